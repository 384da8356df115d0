// The rendered log view: a read-only document per log file under the bgrun-log: scheme, kept
// up to date while the file grows, with every visible editor of it following the last line.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { FOLLOWING_CONTEXT_KEY, LOG_SCHEME } from "./constants";
import { LogRenderer } from "./logRender";
import { FileStamp, FollowTracker, planRead } from "./logTail";
import { errorMessage, traceError, traceInfo } from "./logging";
import { extensionSettings } from "./settings";

// How often a visible log is checked for growth. File events alone can miss appends by a writer
// that keeps the file open, and can arrive late on network file systems.
const POLL_INTERVAL_MS = 500;
// Delay between new content and the scroll to its end. The editor can deliver a user's scroll
// in the same batch as the content change and after it, so deciding later lets that scroll
// stop following.
const REVEAL_DELAY_MS = 50;

/** Returns the bgrun-log: URI of a log file. The editor tab shows the file name as its title. */
export function logUri(fsPath: string): vscode.Uri {
  return vscode.Uri.from({ scheme: LOG_SCHEME, path: fsPath });
}

/** Returns the file path of a bgrun-log: or file: URI. */
export function logPathOf(uri: vscode.Uri): string {
  return uri.scheme === LOG_SCHEME ? uri.path : uri.fsPath;
}

class LogState {
  renderer: LogRenderer;
  stamp: FileStamp | undefined;
  readUpTo = 0;
  text = "";
  missing: string | undefined;
  watcher: vscode.FileSystemWatcher | undefined;
  /** The refresh in progress, so that reads of one file never overlap. */
  refreshing: Promise<boolean> | undefined;
  queued = false;

  constructor(
    readonly filePath: string,
    readonly maxBytes: number,
  ) {
    this.renderer = new LogRenderer(maxBytes);
  }

  dispose(): void {
    this.watcher?.dispose();
  }
}

async function readRange(filePath: string, from: number, to: number): Promise<Uint8Array> {
  const handle = await fs.promises.open(filePath, "r");
  try {
    const buffer = Buffer.alloc(to - from);
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesRead } = await handle.read(buffer, offset, buffer.length - offset, from + offset);
      if (bytesRead === 0) {
        break;
      }
      offset += bytesRead;
    }
    return buffer.subarray(0, offset);
  } finally {
    await handle.close();
  }
}

export class LogViewProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly states = new Map<string, LogState>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly tracker = new FollowTracker<vscode.TextEditor>();
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pendingReveals = new Map<vscode.TextEditor, NodeJS.Timeout>();
  private followingEnabled: boolean;

  readonly onDidChange = this.changed.event;

  constructor() {
    this.followingEnabled = extensionSettings().followLogs;
    void vscode.commands.executeCommand("setContext", FOLLOWING_CONTEXT_KEY, this.followingEnabled);
    this.disposables.push(
      this.changed,
      vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, this),
      vscode.window.onDidChangeVisibleTextEditors((editors) => this.visibleEditorsChanged(editors)),
      vscode.window.onDidChangeTextEditorVisibleRanges((event) => this.visibleRangesChanged(event)),
      vscode.workspace.onDidChangeTextDocument((event) => this.documentChanged(event.document)),
      vscode.workspace.onDidCloseTextDocument((document) => this.documentClosed(document)),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("bgrun.followLogs")) {
          this.setFollowing(extensionSettings().followLogs);
        }
        if (event.affectsConfiguration("bgrun.maxRenderedLogSize")) {
          this.reloadAll();
        }
      }),
    );
    this.visibleEditorsChanged(vscode.window.visibleTextEditors);
  }

  get following(): boolean {
    return this.followingEnabled;
  }

  /** Turns following on or off in this window. Turning it on scrolls every visible log to its end. */
  setFollowing(enabled: boolean): void {
    this.followingEnabled = enabled;
    void vscode.commands.executeCommand("setContext", FOLLOWING_CONTEXT_KEY, enabled);
    if (enabled) {
      for (const editor of this.logEditors()) {
        this.tracker.open(editor, editor.document.lineCount);
        this.revealEnd(editor);
      }
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const state = this.stateFor(uri);
    await this.refresh(state);
    return state.text;
  }

  /** Opens the rendered view of a log file in an editor tab. */
  async open(filePath: string, options: vscode.TextDocumentShowOptions = {}): Promise<vscode.TextEditor> {
    const document = await vscode.workspace.openTextDocument(logUri(filePath));
    return vscode.window.showTextDocument(document, { preview: false, ...options });
  }

  dispose(): void {
    this.stopPolling();
    for (const timer of this.pendingReveals.values()) {
      clearTimeout(timer);
    }
    this.pendingReveals.clear();
    for (const state of this.states.values()) {
      state.dispose();
    }
    this.states.clear();
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }

  private stateFor(uri: vscode.Uri): LogState {
    const filePath = logPathOf(uri);
    let state = this.states.get(filePath);
    if (state === undefined) {
      state = new LogState(filePath, extensionSettings().maxRenderedLogBytes);
      state.watcher = this.watch(uri, filePath);
      this.states.set(filePath, state);
    }
    return state;
  }

  private watch(uri: vscode.Uri, filePath: string): vscode.FileSystemWatcher | undefined {
    try {
      const pattern = new vscode.RelativePattern(vscode.Uri.file(path.dirname(filePath)), path.basename(filePath));
      const watcher = vscode.workspace.createFileSystemWatcher(pattern);
      const onEvent = () => void this.refreshAndNotify(uri);
      watcher.onDidChange(onEvent);
      watcher.onDidCreate(onEvent);
      watcher.onDidDelete(onEvent);
      return watcher;
    } catch (error) {
      traceError(`Watching ${filePath} failed, so only polling finds its changes`, error);
      return undefined;
    }
  }

  private reloadAll(): void {
    for (const [filePath, state] of this.states) {
      state.dispose();
      this.states.delete(filePath);
      this.changed.fire(logUri(filePath));
    }
  }

  /** Reads what the file gained and returns true when the rendered text changed. */
  private refresh(state: LogState): Promise<boolean> {
    if (state.refreshing !== undefined) {
      state.queued = true;
      return state.refreshing;
    }
    state.refreshing = this.readChanges(state).finally(() => {
      state.refreshing = undefined;
      if (state.queued) {
        state.queued = false;
        void this.refreshAndNotify(logUri(state.filePath));
      }
    });
    return state.refreshing;
  }

  private async refreshAndNotify(uri: vscode.Uri): Promise<void> {
    const state = this.states.get(logPathOf(uri));
    if (state !== undefined && (await this.refresh(state))) {
      this.changed.fire(uri);
    }
  }

  private async readChanges(state: LogState): Promise<boolean> {
    const before = state.text;
    let stats: fs.Stats;
    try {
      stats = await fs.promises.stat(state.filePath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      this.showUnreadable(state, code === "ENOENT" ? "does not exist" : `cannot be read (${errorMessage(error)})`);
      return state.text !== before;
    }

    const current: FileStamp = { size: stats.size, dev: stats.dev, ino: stats.ino };
    const plan = planRead(state.stamp, current, state.readUpTo, state.maxBytes);
    if (plan.kind === "none") {
      state.stamp = current;
      return false;
    }
    let bytes: Uint8Array;
    try {
      bytes = await readRange(state.filePath, plan.from, plan.to);
    } catch (error) {
      this.showUnreadable(state, `cannot be read (${errorMessage(error)})`);
      return state.text !== before;
    }

    state.missing = undefined;
    if (plan.kind === "reload") {
      state.renderer.reset(plan.from);
    }
    state.renderer.append(bytes);
    state.readUpTo = plan.from + bytes.length;
    state.stamp = current;
    state.text = state.renderer.text();
    return state.text !== before;
  }

  /** Replaces the view with the reason the file cannot be shown, and logs each new reason once. */
  private showUnreadable(state: LogState, reason: string): void {
    if (state.missing !== reason) {
      traceInfo(`Log view: ${state.filePath} ${reason}`);
    }
    state.missing = reason;
    state.stamp = undefined;
    state.readUpTo = 0;
    state.text = `[bgrun view] The log file ${state.filePath} ${reason}. The view updates when the file can be read.\n`;
  }

  private logEditors(): vscode.TextEditor[] {
    return vscode.window.visibleTextEditors.filter((editor) => editor.document.uri.scheme === LOG_SCHEME);
  }

  private visibleEditorsChanged(editors: readonly vscode.TextEditor[]): void {
    const logEditors = editors.filter((editor) => editor.document.uri.scheme === LOG_SCHEME);
    for (const known of this.tracker.keys()) {
      if (!logEditors.includes(known)) {
        this.tracker.forget(known);
      }
    }
    for (const editor of logEditors) {
      if (!this.tracker.keys().includes(editor)) {
        this.tracker.open(editor, editor.document.lineCount);
        if (this.followingEnabled) {
          this.revealEnd(editor);
        }
      }
    }
    if (logEditors.length > 0) {
      this.startPolling();
    } else {
      this.stopPolling();
    }
  }

  private visibleRangesChanged(event: vscode.TextEditorVisibleRangesChangeEvent): void {
    if (event.textEditor.document.uri.scheme !== LOG_SCHEME || event.visibleRanges.length === 0) {
      return;
    }
    const firstVisible = Math.min(...event.visibleRanges.map((range) => range.start.line));
    const lastVisible = Math.max(...event.visibleRanges.map((range) => range.end.line));
    const editor = event.textEditor;
    if (this.tracker.visibleRangesChanged(editor, firstVisible, lastVisible, editor.document.lineCount)) {
      this.scheduleReveal(editor);
    }
  }

  private documentChanged(document: vscode.TextDocument): void {
    if (document.uri.scheme !== LOG_SCHEME || !this.followingEnabled) {
      return;
    }
    for (const editor of this.logEditors()) {
      if (editor.document === document) {
        this.scheduleReveal(editor);
      }
    }
  }

  /** Reveals the end of `editor` after REVEAL_DELAY_MS, if it still follows then. */
  private scheduleReveal(editor: vscode.TextEditor): void {
    if (!this.followingEnabled || this.pendingReveals.has(editor)) {
      return;
    }
    const timer = setTimeout(() => {
      this.pendingReveals.delete(editor);
      if (this.followingEnabled && this.tracker.contentChanged(editor)) {
        this.revealEnd(editor);
      }
    }, REVEAL_DELAY_MS);
    this.pendingReveals.set(editor, timer);
  }

  private documentClosed(document: vscode.TextDocument): void {
    if (document.uri.scheme !== LOG_SCHEME) {
      return;
    }
    const filePath = logPathOf(document.uri);
    this.states.get(filePath)?.dispose();
    this.states.delete(filePath);
  }

  private revealEnd(editor: vscode.TextEditor): void {
    const lastLine = Math.max(0, editor.document.lineCount - 1);
    const end = new vscode.Position(lastLine, 0);
    editor.revealRange(new vscode.Range(end, end), vscode.TextEditorRevealType.Default);
  }

  private startPolling(): void {
    if (this.timer !== undefined) {
      return;
    }
    this.timer = setInterval(() => {
      const uris = new Map(this.logEditors().map((editor) => [logPathOf(editor.document.uri), editor.document.uri]));
      for (const uri of uris.values()) {
        void this.refreshAndNotify(uri);
      }
    }, POLL_INTERVAL_MS);
  }

  private stopPolling(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
