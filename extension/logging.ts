// The "bgrun" LogOutputChannel that every module logs to. The language client writes the server's stderr to it too.

import type { LogOutputChannel, OutputChannel } from "vscode";
import { ServerLogParser } from "./serverLog";

let channel: LogOutputChannel | undefined;

export function registerLogger(output: LogOutputChannel): void {
  channel = output;
}

export function traceInfo(message: string): void {
  channel?.info(message);
}

export function traceWarn(message: string): void {
  channel?.warn(message);
}

export function traceDebug(message: string): void {
  channel?.debug(message);
}

/** Logs a caught error with its message. Callers name the ids involved in `message`. */
export function traceError(message: string, error?: unknown): void {
  if (error === undefined) {
    channel?.error(message);
    return;
  }
  channel?.error(`${message}: ${errorMessage(error)}`);
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * Returns the output channel to give the language client: it writes the server's stderr into
 * `output` line by line, at each line's own level. Everything else goes to `output` unchanged.
 */
export function serverOutputChannel(output: LogOutputChannel): OutputChannel {
  const parser = new ServerLogParser();
  const write = (text: string) => {
    for (const line of parser.push(text)) {
      output[line.level](line.message);
    }
  };
  return {
    name: output.name,
    append: write,
    appendLine: (text: string) => write(`${text}\n`),
    replace: (text: string) => write(`${text}\n`),
    clear: () => output.clear(),
    show: (...args: unknown[]) => output.show(...(args as [boolean?])),
    hide: () => output.hide(),
    dispose: () => {
      for (const line of parser.flush()) {
        output[line.level](line.message);
      }
    },
  };
}
