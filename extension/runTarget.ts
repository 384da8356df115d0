// The shell command that runs a source file, without the VS Code API.

import * as path from "node:path";

// Characters that need no quoting in a POSIX shell word.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes a word for /bin/sh: unchanged when safe, else in single quotes. */
export function shellQuote(word: string): string {
  if (word !== "" && SAFE_WORD.test(word)) {
    return word;
  }
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** File extensions that "Run Current File in Background" accepts, with the program that runs each. */
export const RUNNERS: Readonly<Record<string, readonly string[]>> = {
  ".py": ["python3"],
  ".sh": ["bash"],
  ".js": ["node"],
  ".ts": ["npx", "tsx"],
};

export interface PythonForFile {
  /** Interpreter the Python extension selected, when it has one. */
  executable?: string;
  /** venv or conda prefix of that interpreter. When set, the job runs with it activated. */
  environment?: string;
}

/** Returns the file's path as the command shows it: relative to `cwd` when inside it. */
export function displayPath(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  if (relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative)) {
    return relative;
  }
  return file;
}

/**
 * Returns the shell command that runs `file` from `cwd`, or undefined for a file type without a runner.
 *
 * A Python file runs with `python3` when the job activates the selected environment (its
 * `python3` comes first on PATH then), with the selected interpreter's path when that
 * interpreter has no environment to activate, and with `python3` from PATH otherwise.
 */
export function commandForFile(file: string, cwd: string, python: PythonForFile = {}): string | undefined {
  const extension = path.extname(file).toLowerCase();
  const runner = RUNNERS[extension];
  if (runner === undefined) {
    return undefined;
  }
  let program = [...runner];
  if (extension === ".py" && python.environment === undefined && python.executable !== undefined) {
    program = [python.executable];
  }
  return [...program, displayPath(file, cwd)].map(shellQuote).join(" ");
}
