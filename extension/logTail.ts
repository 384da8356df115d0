// Decisions behind following a growing log, without the VS Code API: what to read after the
// file changed, and whether an editor should scroll to the new last line.

/** Size and identity of the log file, from stat(). */
export interface FileStamp {
  size: number;
  dev: number;
  ino: number;
}

export type ReadPlan =
  | { kind: "none" }
  /** Read bytes [from, to) and append them to what is shown. */
  | { kind: "append"; from: number; to: number }
  /** Drop what is shown and read bytes [from, to): the file is new, replaced, truncated or grew too much. */
  | { kind: "reload"; from: number; to: number };

/**
 * Returns what to read after a stat of the log.
 *
 * `readUpTo` is the file offset read so far. A file whose device or inode changed was replaced,
 * and one smaller than `readUpTo` was truncated: both are read again from the start, or from the
 * start of the last `maxBytes` when the file is larger than the view keeps.
 */
export function planRead(previous: FileStamp | undefined, current: FileStamp, readUpTo: number, maxBytes: number): ReadPlan {
  const tailStart = Math.max(0, current.size - maxBytes);
  const replaced = previous !== undefined && (previous.ino !== current.ino || previous.dev !== current.dev);
  if (previous === undefined || replaced || current.size < readUpTo) {
    return { kind: "reload", from: tailStart, to: current.size };
  }
  if (current.size === readUpTo) {
    return { kind: "none" };
  }
  if (current.size - readUpTo > maxBytes) {
    return { kind: "reload", from: tailStart, to: current.size };
  }
  return { kind: "append", from: readUpTo, to: current.size };
}

// Lines at the end that may be out of view while the editor still counts as showing the end:
// the empty line after the final newline, and a line cut off at the bottom edge.
const END_TOLERANCE_LINES = 2;

interface FollowState {
  following: boolean;
  /** Line count of the document the last time this editor was seen at its end. */
  lineCountAtEnd: number;
  /** First visible line at the last visible-ranges event, when there was one. */
  firstVisible: number | undefined;
}

/**
 * Tracks, per editor, whether it follows the end of its log.
 *
 * Only a scroll up stops following: the first visible line moves up and the view no longer
 * reaches the last line shown when the editor was last seen at its end. Content that grows
 * below the view, and an editor made shorter (a panel opened below it), keep the top line
 * where it was, so they never stop following. Scrolling back to the end resumes it.
 */
export class FollowTracker<Key> {
  private readonly states = new Map<Key, FollowState>();

  /** Starts tracking an editor that just opened a log, following from the start. */
  open(key: Key, lineCount: number): void {
    this.states.set(key, { following: true, lineCountAtEnd: lineCount, firstVisible: undefined });
  }

  forget(key: Key): void {
    this.states.delete(key);
  }

  keys(): Key[] {
    return [...this.states.keys()];
  }

  isFollowing(key: Key): boolean {
    return this.states.get(key)?.following ?? false;
  }

  /**
   * Records the editor's visible lines (0-based, first and last of its visible ranges). Returns
   * true when a following editor no longer shows its last line, because it was resized or the
   * content grew, so it should reveal the end again.
   */
  visibleRangesChanged(key: Key, firstVisible: number, lastVisible: number, lineCount: number): boolean {
    let state = this.states.get(key);
    if (state === undefined) {
      state = { following: lastVisible >= lineCount - END_TOLERANCE_LINES, lineCountAtEnd: lineCount, firstVisible };
      this.states.set(key, state);
      return false;
    }
    const scrolledUp = state.firstVisible !== undefined && firstVisible < state.firstVisible;
    state.firstVisible = firstVisible;
    if (lastVisible >= lineCount - END_TOLERANCE_LINES) {
      state.following = true;
      state.lineCountAtEnd = lineCount;
      return false;
    }
    if (scrolledUp && lastVisible < Math.min(state.lineCountAtEnd, lineCount) - END_TOLERANCE_LINES) {
      state.following = false;
    }
    return state.following;
  }

  /**
   * Returns true when the editor should reveal the new last line of content that just arrived.
   * The line count at the end stays as it was, because a visible-ranges event that the editor
   * sends for its old viewport after the content grew must still count as being at the end.
   */
  contentChanged(key: Key): boolean {
    return this.states.get(key)?.following ?? false;
  }
}
