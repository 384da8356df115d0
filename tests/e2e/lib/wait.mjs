// Poll for conditions outside the browser, such as files an extension writes.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export const FILE_TIMEOUT_MS = 30_000;

/**
 * Call predicate every intervalMs until it returns a truthy value, and return
 * that value. Throws "timed out ... waiting for DESCRIPTION" after timeout ms.
 */
export async function waitUntil(predicate, description, { timeout = FILE_TIMEOUT_MS, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${description}`);
    await sleep(intervalMs);
  }
}

/**
 * Wait until file exists and, when contains (a string or RegExp) is given,
 * until its text matches. Returns the file's text.
 */
export async function waitForFile(file, { contains, timeout = FILE_TIMEOUT_MS } = {}) {
  let lastText;
  const description = contains === undefined ? `${file} to exist` : `${file} to contain ${contains}`;
  try {
    return await waitUntil(
      async () => {
        try {
          lastText = await readFile(file, 'utf8');
        } catch (error) {
          if (error.code === 'ENOENT') return undefined;
          throw error;
        }
        if (contains === undefined) return { text: lastText };
        const matches = typeof contains === 'string' ? lastText.includes(contains) : contains.test(lastText);
        return matches ? { text: lastText } : undefined;
      },
      description,
      { timeout },
    ).then((result) => result.text);
  } catch (error) {
    if (lastText !== undefined) error.message += `; last text: ${JSON.stringify(lastText.slice(0, 500))}`;
    throw error;
  }
}
