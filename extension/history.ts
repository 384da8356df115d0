// The history of commands run from the "Run in Background" prompt, newest first, without the VS Code API.

export const MAX_HISTORY = 30;

/** Returns the history with `command` first, without an earlier copy of it, at most `max` entries long. */
export function addToHistory(history: readonly string[], command: string, max = MAX_HISTORY): string[] {
  const trimmed = command.trim();
  if (trimmed === "") {
    return [...history];
  }
  return [trimmed, ...history.filter((entry) => entry !== trimmed)].slice(0, max);
}

export function removeFromHistory(history: readonly string[], command: string): string[] {
  return history.filter((entry) => entry !== command);
}

/** Returns a history read from storage, dropping entries that are not non-empty strings. */
export function sanitizeHistory(stored: unknown): string[] {
  if (!Array.isArray(stored)) {
    return [];
  }
  const entries = stored.filter((entry): entry is string => typeof entry === "string" && entry.trim() !== "");
  return [...new Set(entries)].slice(0, MAX_HISTORY);
}

export interface CommandChoice {
  command: string;
  kind: "typed" | "file" | "history";
}

/**
 * Returns the choices of the command prompt: what the user typed (when it is new), the active
 * file's run command, then the history, each command once.
 */
export function commandChoices(typed: string, fileCommand: string | undefined, history: readonly string[]): CommandChoice[] {
  const choices: CommandChoice[] = [];
  const seen = new Set<string>();
  const add = (command: string, kind: CommandChoice["kind"]) => {
    if (command !== "" && !seen.has(command)) {
      seen.add(command);
      choices.push({ command, kind });
    }
  };
  const typedCommand = typed.trim();
  const known = typedCommand === fileCommand || history.includes(typedCommand);
  if (!known) {
    add(typedCommand, "typed");
  }
  if (fileCommand !== undefined) {
    add(fileCommand, "file");
  }
  for (const command of history) {
    add(command, "history");
  }
  return choices;
}
