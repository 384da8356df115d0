// The choice of the Python that runs the backend, and the probe that checks it, without the VS Code API.

import * as os from "node:os";
import * as path from "node:path";

export type PythonSource = "setting" | "pythonExtension" | "path" | "privateEnvironment";

export interface PythonChoice {
  /** Program to run: an absolute path, or a name looked up on PATH. */
  command: string;
  source: PythonSource;
}

export interface PythonInputs {
  /** bgrun.python after expansion, or "" when unset. */
  setting: string;
  /** Interpreter selected in the Python extension, when that extension is installed and has one. */
  extensionInterpreter?: string;
}

export const PATH_PYTHON = "python3";
export const MINIMUM_VERSION: readonly [number, number] = [3, 9];

/** Returns the Python that runs the backend: bgrun.python, else the Python extension's, else python3 on PATH. */
export function choosePython(inputs: PythonInputs): PythonChoice {
  if (inputs.setting.trim() !== "") {
    return { command: inputs.setting.trim(), source: "setting" };
  }
  if (inputs.extensionInterpreter !== undefined && inputs.extensionInterpreter !== "") {
    return { command: inputs.extensionInterpreter, source: "pythonExtension" };
  }
  return { command: PATH_PYTHON, source: "path" };
}

export function describeSource(source: PythonSource): string {
  switch (source) {
    case "setting":
      return "from the bgrun.python setting";
    case "pythonExtension":
      return "selected in the Python extension";
    case "path":
      return "python3 on PATH";
    case "privateEnvironment":
      return "bgrun's private environment";
  }
}

/**
 * Expands `~`, `${userHome}`, `${workspaceFolder}` and `${env:NAME}` in a path setting.
 * `${workspaceFolder}` stays unexpanded when no folder is open.
 */
export function expandPath(value: string, workspaceFolder: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  let text = value.trim();
  text = text.replace(/\$\{userHome\}/g, os.homedir());
  if (workspaceFolder !== undefined) {
    text = text.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  }
  text = text.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => env[name] ?? "");
  if (text === "~" || text.startsWith("~/")) {
    text = path.join(os.homedir(), text.slice(1));
  }
  return text;
}

/**
 * Python source that reports the interpreter's version, prefix, and whether it can import the
 * backend with its server dependencies, as one line of JSON. It imports bgrun.server.server,
 * because bgrun.server alone imports without pygls.
 */
export const PROBE_SCRIPT = [
  "import json, sys",
  "info = {'version': list(sys.version_info[:3]), 'executable': sys.executable, 'prefix': sys.prefix}",
  "try:",
  "    import bgrun, bgrun.server.server",
  "    info['bgrun'] = getattr(bgrun, '__version__', 'unknown')",
  "except Exception as error:",
  "    info['error'] = '%s: %s' % (type(error).__name__, error)",
  "print(json.dumps(info))",
].join("\n");

export interface ProbeResult {
  version: [number, number, number];
  executable: string;
  prefix: string;
  /** bgrun's version when the backend imports, else undefined. */
  bgrun?: string;
  /** Error that stopped the backend's import. */
  error?: string;
}

/** Parses the probe's output, or returns undefined when it is not the probe's JSON line. */
export function parseProbe(stdout: string): ProbeResult | undefined {
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    const value = JSON.parse(line) as Partial<ProbeResult>;
    if (!Array.isArray(value.version) || typeof value.executable !== "string") {
      return undefined;
    }
    return value as ProbeResult;
  } catch {
    return undefined;
  }
}

export function isSupportedVersion(version: readonly number[]): boolean {
  const [major, minor] = version;
  return major > MINIMUM_VERSION[0] || (major === MINIMUM_VERSION[0] && minor >= MINIMUM_VERSION[1]);
}

export function formatVersion(version: readonly number[]): string {
  return version.join(".");
}

/** Returns the interpreter of a venv made by `python -m venv` at `prefix`. */
export function venvPython(prefix: string, platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? path.join(prefix, "Scripts", "python.exe") : path.join(prefix, "bin", "python");
}
