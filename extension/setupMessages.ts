// Messages about a backend that cannot start and about a failed pip install, without the VS Code API.

/** Returns the numbered fixes shown when no Python with the backend could be found or set up. */
export function backendFixes(): string {
  return [
    "1. Set bgrun.python to a Python 3.9+ that has the bgrun backend (from a clone of bgrun: python -m pip install './pyserver[server]').",
    '2. Or select such an interpreter with "Python: Select Interpreter" (Python extension) and leave bgrun.python empty.',
    '3. Or run "bgrun: Set Up Private Python Environment"; on a host without an index, point pip at a wheelhouse first ' +
      "(the keys find-links and no-index in pip.conf, or PIP_FIND_LINKS and PIP_NO_INDEX=1 in the environment VS Code starts with).",
    '4. Then run "bgrun: Restart Backend". "bgrun: Show Backend Log" shows the full output.',
  ].join(" ");
}

// pip's messages when it cannot reach an index or a proxy (pip 21 to 25).
const UNREACHABLE_PATTERNS = [
  /Failed to establish a new connection/i,
  /Temporary failure in name resolution/i,
  /Name or service not known/i,
  /Network is unreachable/i,
  /Connection refused/i,
  /Max retries exceeded/i,
  /ProxyError/i,
  /Read timed out/i,
  /SSLError|CERTIFICATE_VERIFY_FAILED/i,
];
const NOT_FOUND_PATTERNS = [/Could not find a version that satisfies the requirement/i, /No matching distribution found for ([^\s]+)/i];

export interface PipDiagnosis {
  /** True when pip could reach no index. */
  unreachable: boolean;
  /** The requirement that pip found no distribution for, when it names one. */
  missing?: string;
  /** One sentence for the error notification. */
  summary: string;
}

/** Reads pip's output after a failed install and returns the cause in one sentence. */
export function diagnosePipOutput(output: string): PipDiagnosis {
  const unreachable = UNREACHABLE_PATTERNS.some((pattern) => pattern.test(output));
  const missingMatch = /No matching distribution found for ([^\s]+)/i.exec(output);
  const missing = missingMatch?.[1];
  const notFound = NOT_FOUND_PATTERNS.some((pattern) => pattern.test(output));
  if (unreachable) {
    return {
      unreachable,
      missing,
      summary:
        "pip could not reach a package index" +
        (missing ? ` and so found no ${missing}` : "") +
        ". Without network access, set PIP_FIND_LINKS to a folder of wheels (bgrun's server dependencies, setuptools and wheel) and PIP_NO_INDEX=1, or configure pip.conf, then try again.",
    };
  }
  if (notFound && /\(from versions: none\)/i.test(output)) {
    return {
      unreachable: true,
      missing,
      summary:
        `pip found no version at all of ${missing ?? "a requirement"} (from versions: none): no package index could be reached, ` +
        "or the configured index or wheelhouse lacks it. Without network access, set PIP_FIND_LINKS to a folder of wheels " +
        "(bgrun's server dependencies, setuptools and wheel) and PIP_NO_INDEX=1, or configure pip.conf, then try again.",
    };
  }
  if (notFound) {
    return {
      unreachable,
      missing,
      summary:
        `pip found no distribution for ${missing ?? "a requirement"} in the configured index or find-links. ` +
        "Check pip's index-url and find-links (pip config list) and that the wheelhouse has that package for this Python.",
    };
  }
  const lastError = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => /^ERROR:|error:/i.test(line))
    .pop();
  return { unreachable, missing, summary: lastError ? `pip failed: ${lastError}` : "pip failed. \"bgrun: Show Backend Log\" shows its output." };
}
