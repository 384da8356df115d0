// Rendering of a raw job log into the text of the read-only log view, without the VS Code API.
//
// A terminal shows a progress bar written with carriage returns as one line that changes. The
// rendered view does the same per line: it keeps the text after the last "\r", where a "\r" at
// the very end of a line (as in "\r\n") does not count. It also strips ANSI escape sequences,
// applies backspaces, and shows invalid UTF-8 as U+FFFD.

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const MEBIBYTE = 1024 * 1024;

// CSI sequences (colours, cursor moves, erase), OSC sequences (titles, hyperlinks) ended by BEL
// or ST, and the two-byte escapes of ECMA-48 and the character set selections.
const ANSI_PATTERN =
  // eslint-disable-next-line no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()#][0-9A-Za-z]|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]/g;
// C0 controls other than tab, and DEL. renderLine handles "\r" and "\b" before it applies this.
// eslint-disable-next-line no-control-regex
const CONTROL_PATTERN = /[\x00-\x08\x0a-\x1f\x7f]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}

/** Applies backspaces: each "\b" removes the character before it, when there is one. */
export function applyBackspaces(text: string): string {
  if (!text.includes("\b")) {
    return text;
  }
  const kept: string[] = [];
  for (const character of text) {
    if (character === "\b") {
      kept.pop();
    } else {
      kept.push(character);
    }
  }
  return kept.join("");
}

/** Renders one decoded line without its "\n": its latest carriage-return frame, without escapes. */
export function renderLine(raw: string): string {
  let text = stripAnsi(raw);
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === CARRIAGE_RETURN) {
    end -= 1;
  }
  text = text.slice(0, end);
  const lastReturn = text.lastIndexOf("\r");
  if (lastReturn >= 0) {
    text = text.slice(lastReturn + 1);
  }
  return applyBackspaces(text).replace(CONTROL_PATTERN, "");
}

/** Formats a byte count for people: "512 bytes", "3.4 KiB", "12.0 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  }
  if (bytes < MEBIBYTE) {
    return `${(bytes / 1024).toFixed(1)} KiB`;
  }
  if (bytes < 1024 * MEBIBYTE) {
    return `${(bytes / MEBIBYTE).toFixed(1)} MiB`;
  }
  return `${(bytes / (1024 * MEBIBYTE)).toFixed(1)} GiB`;
}

/** Returns the first line of a view that shows only the tail of a log. */
export function omittedNotice(omittedBytes: number, maxBytes: number): string {
  return (
    `[bgrun view] The first ${formatBytes(omittedBytes)} of this log are not shown: the view shows at most ` +
    `${formatBytes(maxBytes)} (setting bgrun.maxRenderedLogSize). Run "bgrun: Open Log File (raw)" to see the whole file.`
  );
}

/** Returns the index just past the last "\r" of `bytes` that is not part of a run of "\r" at the end, or 0. */
function startOfLatestFrame(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === CARRIAGE_RETURN) {
    end -= 1;
  }
  for (let index = end - 1; index >= 0; index -= 1) {
    if (bytes[index] === CARRIAGE_RETURN) {
      return index + 1;
    }
  }
  return 0;
}

/**
 * Incremental renderer of one log: `append` takes the bytes the file grew by, `text` returns
 * the rendered view. It keeps at most `maxBytes` of raw log, dropping whole lines from the
 * start, and reports how many bytes of the file it does not show.
 */
export class LogRenderer {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private lines: string[] = [];
  private lineSizes: number[] = [];
  private keptLineBytes = 0;
  private firstLine = 0;
  private pending: Uint8Array = new Uint8Array(0);
  private skipToNewline = false;
  private omitted = 0;
  private completedText = "";
  private completedTextStart = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes at the start of the file that the view leaves out. */
  get omittedBytes(): number {
    return this.omitted;
  }

  /** Drops everything and starts again at byte `offset` of the file, skipping the partial line there. */
  reset(offset = 0): void {
    this.lines = [];
    this.lineSizes = [];
    this.keptLineBytes = 0;
    this.firstLine = 0;
    this.pending = new Uint8Array(0);
    this.skipToNewline = offset > 0;
    this.omitted = offset;
    this.completedText = "";
    this.completedTextStart = 0;
  }

  /** Adds bytes that follow the ones appended so far. */
  append(chunk: Uint8Array): void {
    let data = chunk;
    if (this.skipToNewline) {
      const newline = data.indexOf(NEWLINE);
      if (newline < 0) {
        this.omitted += data.length;
        return;
      }
      this.omitted += newline + 1;
      data = data.subarray(newline + 1);
      this.skipToNewline = false;
    }
    let start = 0;
    let newline = data.indexOf(NEWLINE, start);
    while (newline >= 0) {
      const rawLine = this.takePending(data.subarray(start, newline));
      this.pushLine(this.decoder.decode(rawLine), rawLine.length + 1);
      start = newline + 1;
      newline = data.indexOf(NEWLINE, start);
    }
    if (start < data.length) {
      this.pending = this.takePending(data.subarray(start));
      this.compactPending();
    }
    this.enforceLimit();
  }

  /** Returns the rendered view: an omission notice when bytes are left out, the lines, the partial last line. */
  text(): string {
    const parts: string[] = [];
    if (this.omitted > 0) {
      parts.push(omittedNotice(this.omitted, this.maxBytes) + "\n");
    }
    parts.push(this.completedText.slice(this.completedTextStart));
    if (this.pending.length > 0) {
      parts.push(renderLine(this.decoder.decode(this.pending)));
    }
    return parts.join("");
  }

  private takePending(bytes: Uint8Array): Uint8Array {
    if (this.pending.length === 0) {
      return bytes;
    }
    const joined = new Uint8Array(this.pending.length + bytes.length);
    joined.set(this.pending, 0);
    joined.set(bytes, this.pending.length);
    this.pending = new Uint8Array(0);
    return joined;
  }

  /** Drops the progress-bar frames of the unfinished line that a later "\r" has overwritten. */
  private compactPending(): void {
    const start = startOfLatestFrame(this.pending);
    if (start > 0) {
      this.pending = this.pending.slice(start);
    }
  }

  private pushLine(raw: string, size: number): void {
    const line = renderLine(raw) + "\n";
    this.lines.push(line);
    this.lineSizes.push(size);
    this.keptLineBytes += size;
    this.completedText += line;
  }

  private enforceLimit(): void {
    while (this.keptLineBytes + this.pending.length > this.maxBytes && this.firstLine < this.lines.length) {
      const size = this.lineSizes[this.firstLine];
      this.keptLineBytes -= size;
      this.omitted += size;
      this.completedTextStart += this.lines[this.firstLine].length;
      this.firstLine += 1;
    }
    if (this.pending.length > this.maxBytes) {
      const cut = this.pending.length - this.maxBytes;
      this.omitted += cut;
      this.pending = this.pending.slice(cut);
    }
    // Compact the arrays and the joined text once the dropped part outweighs the kept part.
    if (this.firstLine > 0 && this.firstLine >= this.lines.length - this.firstLine) {
      this.lines = this.lines.slice(this.firstLine);
      this.lineSizes = this.lineSizes.slice(this.firstLine);
      this.firstLine = 0;
      this.completedText = this.completedText.slice(this.completedTextStart);
      this.completedTextStart = 0;
    }
  }
}

/** Renders a whole log at once, by the rules of LogRenderer. */
export function renderLog(bytes: Uint8Array, maxBytes = Number.POSITIVE_INFINITY): string {
  const renderer = new LogRenderer(maxBytes);
  const offset = bytes.length > maxBytes ? bytes.length - maxBytes : 0;
  renderer.reset(offset);
  renderer.append(bytes.subarray(offset));
  return renderer.text();
}
