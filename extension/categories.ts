// Category names for the category prompt, without the VS Code API.

export const BUILT_IN_CATEGORIES: readonly string[] = ["model_dev", "training", "testing"];

// The engine's rule for a log folder name: letters, digits, ".", "_" and "-", and not "." or "..".
const CATEGORY_PATTERN = /^[A-Za-z0-9._-]+$/;

export function isValidCategory(category: string): boolean {
  return CATEGORY_PATTERN.test(category) && category !== "." && category !== "..";
}

/**
 * Returns the categories the prompt offers, each once: the guess first, then the default
 * category setting, the built-in categories, and the categories of known jobs. Invalid names
 * are left out.
 */
export function categoryChoices(guess: string, defaultCategory: string, jobCategories: Iterable<string>): string[] {
  const choices = new Set<string>();
  for (const category of [guess, defaultCategory, ...BUILT_IN_CATEGORIES, ...jobCategories]) {
    if (category && isValidCategory(category)) {
      choices.add(category);
    }
  }
  return [...choices];
}
