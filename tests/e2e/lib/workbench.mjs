// Drive the VS Code workbench that code-server serves, in headless Chromium.
//
// The selectors are those of the VS Code 1.100 workbench DOM (code-server
// 4.100.3). They are not a public API, so a VS Code upgrade may need them
// changed here, in one place.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** Default timeout for DOM conditions, because extension activation takes several seconds. */
export const UI_TIMEOUT_MS = 30_000;
/**
 * Default timeout of runCommand. It covers the extension host's start after
 * the workbench loads: the first command took 4.7 to 18.1 s on 2 cores while
 * other jobs kept the load average between 4.7 and 9.4.
 */
export const COMMAND_TIMEOUT_MS = 60_000;
/** Timeout for the first load of the workbench. */
export const WORKBENCH_TIMEOUT_MS = 60_000;

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'e2e');

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Without the networking flags Chromium keeps trying to reach Google's
// services, which a closed network refuses many times a second.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const QUICK_INPUT = '.quick-input-widget';
// How long runCommand waits for a row before it opens the palette again.
const PALETTE_RETRY_MS = 2_000;
const QUICK_INPUT_ROW = '.quick-input-list .monaco-list-row';

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function exactText(text) {
  return new RegExp(`^\\s*${escapeRegExp(text)}\\s*$`);
}

/**
 * Launch headless Chromium with its profile in profileDir, open url and wait
 * until the workbench shows its status bar. Returns { context, page }.
 * Messages the page logs as errors are collected in page.consoleErrors.
 * Chromium gets HOME=home (default: profileDir + "-home"), because its crash
 * handler writes under ~/.config/chromium whatever the profile folder is.
 */
export async function openWorkbench(url, profileDir, { viewport = { width: 1280, height: 800 }, home } = {}) {
  const chromiumHome = home ?? `${profileDir}-home`;
  await mkdir(chromiumHome, { recursive: true });
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    env: { ...process.env, HOME: chromiumHome },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => page.consoleErrors.push(`page error: ${error.message}`));

  await page.goto(url);
  // The notifications bell is in the status bar in every layout, so it shows
  // that the status bar has rendered.
  await page.locator('.part.statusbar [id="status.notifications"]').waitFor({ timeout: WORKBENCH_TIMEOUT_MS });
  return { context, page };
}

/**
 * Open the command palette and run the command whose label is exactly label,
 * as the palette shows it ("Category: Title"). Clicking the row, rather than
 * pressing Enter, guarantees that a different, better-ranked command is not
 * run instead.
 *
 * The workbench shows its status bar before the extension host has
 * registered the extensions' commands, and an open palette does not add
 * commands registered after it opened. So while the row is missing, the
 * palette is closed and opened again every few seconds until timeout.
 */
export async function runCommand(page, label, { timeout = COMMAND_TIMEOUT_MS } = {}) {
  const input = page.locator(`${QUICK_INPUT} .quick-input-box input`);
  const row = page
    .locator(QUICK_INPUT_ROW)
    .filter({ has: page.locator('.label-name', { hasText: exactText(label) }) })
    .first();
  const deadline = Date.now() + timeout;
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: Math.max(deadline - Date.now(), 1) });
    await input.fill(`>${label}`);
    try {
      await row.waitFor({ state: 'visible', timeout: Math.min(PALETTE_RETRY_MS, Math.max(deadline - Date.now(), 1)) });
      await row.click();
      return;
    } catch (error) {
      if (Date.now() < deadline) {
        await page.keyboard.press('Escape');
        await input.waitFor({ state: 'hidden', timeout: UI_TIMEOUT_MS });
        continue;
      }
      const visibleLabels = await page.locator(`${QUICK_INPUT_ROW} .label-name`).allInnerTexts();
      throw new Error(
        `command "${label}" not found in the palette within ${timeout} ms; it shows: ${JSON.stringify(visibleLabels)}`,
        { cause: error },
      );
    }
  }
}

// Wait for the quick input widget to show a new request. The command palette
// reuses the same widget, so the check is that its input no longer contains the
// palette's ">" text and, when given, that the prompt or placeholder matches.
async function waitForQuickInput(page, { prompt, placeholder, timeout }) {
  const widget = page.locator(QUICK_INPUT);
  const input = widget.locator('.quick-input-box input');
  await input.waitFor({ state: 'visible', timeout });
  if (placeholder !== undefined) {
    await page.waitForFunction(
      ([selector, expected]) => document.querySelector(selector)?.getAttribute('placeholder')?.includes(expected),
      [`${QUICK_INPUT} .quick-input-box input`, placeholder],
      { timeout },
    );
  }
  if (prompt !== undefined) {
    await widget.locator('.quick-input-message', { hasText: prompt }).waitFor({ state: 'visible', timeout });
  }
  await page.waitForFunction(
    (selector) => !document.querySelector(selector)?.value.startsWith('>'),
    `${QUICK_INPUT} .quick-input-box input`,
    { timeout },
  );
  return input;
}

/**
 * Type text into the input box that an extension opened with
 * showInputBox and press Enter. prompt or placeholder, when given, must
 * appear in the box first, so the answer cannot go to an earlier box.
 */
export async function answerInputBox(page, text, { prompt, placeholder, timeout = UI_TIMEOUT_MS } = {}) {
  const input = await waitForQuickInput(page, { prompt, placeholder, timeout });
  await input.fill(text);
  await input.press('Enter');
}

/**
 * Choose the item whose label is exactly label in the quick pick that an
 * extension opened with showQuickPick. The label is typed first to filter
 * long lists, then the row is clicked.
 */
export async function pickQuickPickItem(page, label, { placeholder, timeout = UI_TIMEOUT_MS } = {}) {
  const input = await waitForQuickInput(page, { placeholder, timeout });
  await input.fill(label);
  const row = page
    .locator(QUICK_INPUT_ROW)
    .filter({ has: page.locator('.label-name', { hasText: exactText(label) }) })
    .first();
  try {
    await row.waitFor({ state: 'visible', timeout });
  } catch (error) {
    const visibleLabels = await page.locator(`${QUICK_INPUT_ROW} .label-name`).allInnerTexts();
    throw new Error(`quick pick item "${label}" not found; the list shows: ${JSON.stringify(visibleLabels)}`, {
      cause: error,
    });
  }
  await row.click();
}

/**
 * Wait for a notification toast whose message contains text (a string or a
 * RegExp) and return its message text.
 */
export async function waitForNotification(page, text, { timeout = UI_TIMEOUT_MS } = {}) {
  const message = page
    .locator('.notifications-toasts .notification-list-item-message', { hasText: text })
    .first();
  try {
    await message.waitFor({ state: 'visible', timeout });
  } catch (error) {
    const visibleLabels = await page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts();
    throw new Error(`no notification containing ${text} within ${timeout} ms; shown: ${JSON.stringify(visibleLabels)}`, {
      cause: error,
    });
  }
  return message.innerText();
}

/**
 * Return the status bar's items as [{ id, text, ariaLabel }], left to right.
 * An extension's item has the id "PUBLISHER.NAME.ITEM_ID".
 */
export async function readStatusBar(page) {
  return page.locator('.part.statusbar .statusbar-item').evaluateAll((items) =>
    items
      .filter((item) => item.offsetParent !== null)
      .map((item) => ({
        id: item.id,
        text: item.innerText.replace(/\s+/g, ' ').trim(),
        ariaLabel: item.getAttribute('aria-label') ?? '',
      })),
  );
}

/**
 * Wait for a status-bar item whose text contains text (a string or a RegExp)
 * and return that item's text.
 */
export async function waitForStatusBarText(page, text, { timeout = UI_TIMEOUT_MS } = {}) {
  const item = page.locator('.part.statusbar .statusbar-item', { hasText: text }).first();
  try {
    await item.waitFor({ state: 'visible', timeout });
  } catch (error) {
    const visibleLabels = (await readStatusBar(page)).map((entry) => entry.text);
    throw new Error(`no status-bar item containing ${text} within ${timeout} ms; shown: ${JSON.stringify(visibleLabels)}`, {
      cause: error,
    });
  }
  return (await item.innerText()).replace(/\s+/g, ' ').trim();
}

/**
 * Wait for an editor tab whose title is exactly title and return its
 * Playwright locator (click it to focus that editor).
 */
export async function findEditorTab(page, title, { timeout = UI_TIMEOUT_MS } = {}) {
  const tab = page
    .locator('.tabs-container .tab')
    .filter({ has: page.locator('.label-name', { hasText: exactText(title) }) })
    .first();
  try {
    await tab.waitFor({ state: 'visible', timeout });
  } catch (error) {
    const visibleLabels = await page.locator('.tabs-container .tab .label-name').allInnerTexts();
    throw new Error(`no editor tab titled "${title}" within ${timeout} ms; open tabs: ${JSON.stringify(visibleLabels)}`, {
      cause: error,
    });
  }
  return tab;
}

/**
 * Return the text of the lines that the active editor renders now. Monaco
 * renders only the lines in view, so a long file is cut to what is visible,
 * and lines come back in screen order.
 */
export async function readEditorText(page, { timeout = UI_TIMEOUT_MS } = {}) {
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines');
  await lines.first().waitFor({ state: 'visible', timeout });
  return lines.first().evaluate((element) =>
    [...element.querySelectorAll('.view-line')]
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
      .map((line) => line.textContent.replace(/\u00a0/g, ' '))
      .join('\n'),
  );
}

/** Save a PNG of the page to test-artifacts/e2e/NAME.png and return its path. */
export async function screenshot(page, name) {
  const file = join(ARTIFACTS_DIR, `${name}.png`);
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: file });
  return file;
}
