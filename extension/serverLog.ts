// Parsing of the backend's stderr lines, so that the bgrun LogOutputChannel shows each one once,
// at its own level and without a second timestamp. No VS Code API here.

export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error";

export interface ServerLogLine {
  level: LogLevelName;
  message: string;
}

// The server's format: "%(asctime)s bgrun serve %(levelname)s %(name)s: %(message)s".
const SERVER_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} bgrun serve (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$/;

const LEVELS: Readonly<Record<string, LogLevelName>> = {
  DEBUG: "debug",
  INFO: "info",
  WARNING: "warn",
  ERROR: "error",
  CRITICAL: "error",
};

/**
 * Splits stderr output into complete lines. Text after the last newline waits for the next
 * chunk. A line that is not in the server's format (a traceback, a stray print) keeps the level
 * of the line before it, and is a warning when nothing came before.
 */
export class ServerLogParser {
  private partial = "";
  private lastLevel: LogLevelName = "warn";

  push(chunk: string): ServerLogLine[] {
    const text = this.partial + chunk;
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? "";
    const parsed: ServerLogLine[] = [];
    for (const line of lines) {
      if (line.trim() === "") {
        continue;
      }
      const match = SERVER_LINE.exec(line);
      if (match) {
        this.lastLevel = LEVELS[match[1]];
        parsed.push({ level: this.lastLevel, message: `[server] ${match[2]}` });
      } else {
        parsed.push({ level: this.lastLevel, message: `[server] ${line}` });
      }
    }
    return parsed;
  }

  /** Returns the text that waits for a newline, as a last line. */
  flush(): ServerLogLine[] {
    const rest = this.partial;
    this.partial = "";
    return rest.trim() === "" ? [] : [{ level: this.lastLevel, message: `[server] ${rest}` }];
  }
}
