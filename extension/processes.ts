// Running short helper processes (the Python probe, venv, pip) with a time limit, without the VS Code API.

import { spawn } from "node:child_process";

export interface ProcessResult {
  /** Exit code, or null when a signal ended the process or it never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started (such as ENOENT) or timed out. */
  error?: Error;
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the process gets SIGTERM, or 0 for no limit. */
  timeoutMs?: number;
  /** Receives output as it arrives, for a log. */
  onOutput?: (text: string) => void;
  /** Ends the process with SIGTERM when it fires. */
  cancel?: { onCancellationRequested(listener: () => void): { dispose(): void } };
  input?: string;
}

// Characters of output kept per stream. pip can print a lot, and only the end matters for a diagnosis.
const MAX_CAPTURE_CHARACTERS = 256 * 1024;

function keepTail(text: string): string {
  return text.length > MAX_CAPTURE_CHARACTERS ? text.slice(text.length - MAX_CAPTURE_CHARACTERS) : text;
}

/** Runs `command args` without a shell and resolves when it exits. The promise never rejects. */
export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      windowsHide: true,
    });
    const finish = (result: Omit<ProcessResult, "stdout" | "stderr" | "timedOut">) => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timer);
      cancellation?.dispose();
      resolve({ ...result, stdout, stderr, timedOut });
    };
    const timer =
      options.timeoutMs && options.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill("SIGTERM");
          }, options.timeoutMs)
        : undefined;
    const cancellation = options.cancel?.onCancellationRequested(() => child.kill("SIGTERM"));
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      stdout = keepTail(stdout + text);
      options.onOutput?.(text);
    });
    child.stderr.on("data", (text: string) => {
      stderr = keepTail(stderr + text);
      options.onOutput?.(text);
    });
    child.on("error", (error) => finish({ code: null, signal: null, error }));
    child.on("close", (code, signal) => {
      const error = timedOut ? new Error(`timed out after ${options.timeoutMs} ms`) : undefined;
      finish({ code, signal, error });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** Describes a failed run in one phrase: "exited with code 1", "was not found", "timed out after 20000 ms". */
export function describeFailure(command: string, result: ProcessResult): string {
  const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") {
    return `${command} was not found`;
  }
  if (code === "EACCES") {
    return `${command} is not executable`;
  }
  if (result.timedOut) {
    return `${command} timed out`;
  }
  if (result.error) {
    return `${command} failed: ${result.error.message}`;
  }
  if (result.signal) {
    return `${command} was killed by ${result.signal}`;
  }
  return `${command} exited with code ${result.code}`;
}
