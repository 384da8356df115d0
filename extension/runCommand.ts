// "Run in Background" and "Run Current File in Background": ask for the command and the
// category, submit the job, and return at once with a notification that names the log.

import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { categoryChoices, isValidCategory } from "./categories";
import { HISTORY_KEY } from "./constants";
import { JobActions, announceStart } from "./jobActions";
import { JobCache } from "./jobs";
import { addToHistory, commandChoices, removeFromHistory, sanitizeHistory } from "./history";
import { traceError, traceInfo } from "./logging";
import { Job, Methods, Preview, RunParams } from "./protocol";
import { PythonExtension } from "./pythonExtension";
import { RUNNERS, commandForFile } from "./runTarget";
import { Backend } from "./server";
import { envFileFor, environmentFor, extensionSettings } from "./settings";
import { requireTrust, showError } from "./vscodeapi";

/** Arguments another extension or a test can pass to bgrun.run to skip the prompts. */
export interface RunArguments {
  command?: string;
  cwd?: string;
  category?: string;
  name?: string;
  delay?: number;
}

const REMOVE_BUTTON: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon("close"), tooltip: "Remove from history" };

interface CommandItem extends vscode.QuickPickItem {
  command: string;
}

interface CategoryItem extends vscode.QuickPickItem {
  category?: string;
}

export class RunFlow {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly backend: Backend,
    private readonly jobs: JobCache,
    private readonly python: PythonExtension,
    private readonly actions: JobActions,
  ) {}

  /** Runs bgrun.run: prompts for what `args` leaves out, submits, and returns the job or undefined when cancelled. */
  async run(args: RunArguments = {}): Promise<Job | undefined> {
    if (!requireTrust("bgrun: Run in Background")) {
      return undefined;
    }
    const folder = await this.chooseFolder(args.cwd);
    const cwd = args.cwd ?? folder?.uri.fsPath ?? os.homedir();
    const selected = await this.python.selected(folder?.uri);
    const editor = vscode.window.activeTextEditor;
    const fileCommand =
      editor?.document.uri.scheme === "file"
        ? commandForFile(editor.document.uri.fsPath, cwd, selected)
        : undefined;
    const command = args.command ?? (await this.promptCommand(fileCommand));
    if (command === undefined) {
      return undefined;
    }
    return this.submit({ command, cwd, category: args.category, name: args.name, delay: args.delay }, folder, selected.environment);
  }

  /** bgrun.runCurrentFile: runs the file of `uri` or of the active editor, from its workspace folder. */
  async runFile(uri?: vscode.Uri): Promise<Job | undefined> {
    if (!requireTrust("bgrun: Run Current File in Background")) {
      return undefined;
    }
    const target = uri instanceof vscode.Uri ? uri : vscode.window.activeTextEditor?.document.uri;
    if (target === undefined || target.scheme !== "file") {
      void vscode.window.showWarningMessage("bgrun: open a saved .py, .sh, .js or .ts file to run it in the background.");
      return undefined;
    }
    const document = vscode.workspace.textDocuments.find((doc) => doc.uri.toString() === target.toString());
    if (document?.isDirty && !(await document.save())) {
      void vscode.window.showWarningMessage(`bgrun: ${path.basename(target.fsPath)} was not saved, so it was not run.`);
      return undefined;
    }
    const folder = vscode.workspace.getWorkspaceFolder(target);
    const cwd = folder?.uri.fsPath ?? path.dirname(target.fsPath);
    const selected = await this.python.selected(target);
    const command = commandForFile(target.fsPath, cwd, selected);
    if (command === undefined) {
      void vscode.window.showWarningMessage(
        `bgrun runs ${Object.keys(RUNNERS).join(", ")} files, and ${path.basename(target.fsPath)} is none of them. ` +
          `Use "bgrun: Run in Background" to type a command.`,
      );
      return undefined;
    }
    return this.submit({ command, cwd }, folder, selected.environment);
  }

  private async chooseFolder(cwd: string | undefined): Promise<vscode.WorkspaceFolder | undefined> {
    if (cwd !== undefined) {
      return vscode.workspace.getWorkspaceFolder(vscode.Uri.file(cwd));
    }
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length <= 1) {
      return folders[0];
    }
    const active = vscode.window.activeTextEditor?.document.uri;
    const owner = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
    if (owner !== undefined) {
      return owner;
    }
    const picked = await vscode.window.showWorkspaceFolderPick({ placeHolder: "Folder to run the command in" });
    if (picked === undefined) {
      throw new vscode.CancellationError();
    }
    return picked;
  }

  private history(): string[] {
    return sanitizeHistory(this.context.globalState.get<unknown>(HISTORY_KEY));
  }

  private async promptCommand(fileCommand: string | undefined): Promise<string | undefined> {
    const quickPick = vscode.window.createQuickPick<CommandItem>();
    quickPick.title = "bgrun: Run in Background";
    quickPick.placeholder = "Command to run in the background, such as python3 train.py --epochs 10";
    quickPick.ignoreFocusOut = true;
    quickPick.matchOnDescription = true;
    const redraw = () => {
      quickPick.items = commandChoices(quickPick.value, fileCommand, this.history()).map((choice) => ({
        label: choice.command,
        command: choice.command,
        description: choice.kind === "typed" ? "run this command" : choice.kind === "file" ? "active file" : "recent",
        alwaysShow: choice.kind === "typed",
        buttons: choice.kind === "history" ? [REMOVE_BUTTON] : [],
      }));
    };
    redraw();
    const subscriptions = [
      quickPick.onDidChangeValue(redraw),
      quickPick.onDidTriggerItemButton(async (event) => {
        await this.context.globalState.update(HISTORY_KEY, removeFromHistory(this.history(), event.item.command));
        redraw();
      }),
    ];
    const command = await new Promise<string | undefined>((resolve) => {
      subscriptions.push(
        quickPick.onDidAccept(() => {
          const chosen = quickPick.selectedItems[0]?.command ?? quickPick.value;
          if (chosen.trim() === "") {
            return;
          }
          resolve(chosen.trim());
          quickPick.hide();
        }),
        quickPick.onDidHide(() => resolve(undefined)),
      );
      quickPick.show();
    });
    for (const subscription of subscriptions) {
      subscription.dispose();
    }
    quickPick.dispose();
    return command;
  }

  private async promptCategory(preview: Preview): Promise<string | undefined> {
    const settings = extensionSettings();
    const known = new Set(categoryChoices(preview.category, settings.defaultCategory, this.jobs.all().map((job) => job.category)));
    const quickPick = vscode.window.createQuickPick<CategoryItem>();
    quickPick.title = `bgrun: category of ${preview.name}`;
    quickPick.placeholder = `Log folder under ${preview.log_root}. Type a new name to create one.`;
    quickPick.ignoreFocusOut = true;
    const baseItems: CategoryItem[] = [...known].map((category) => ({
      label: category,
      category,
      description: category === preview.category ? "guessed from the command" : undefined,
    }));
    const redraw = () => {
      const typed = quickPick.value.trim();
      const extra: CategoryItem[] = [];
      if (typed !== "" && !known.has(typed)) {
        extra.push(
          isValidCategory(typed)
            ? { label: typed, category: typed, description: "new category", alwaysShow: true }
            : { label: `$(error) ${typed}`, description: "invalid: use letters, digits, '.', '_' and '-'", alwaysShow: true },
        );
      }
      quickPick.items = [...extra, ...baseItems];
    };
    redraw();
    quickPick.activeItems = quickPick.items.filter((item) => item.category === preview.category);
    const subscriptions = [quickPick.onDidChangeValue(redraw)];
    const category = await new Promise<string | undefined>((resolve) => {
      subscriptions.push(
        quickPick.onDidAccept(() => {
          // Enter can arrive before the items are refilled for the typed text, which leaves no
          // selection. A valid typed name is then used as the category.
          const typed = quickPick.value.trim();
          const chosen = quickPick.selectedItems[0]?.category ?? (isValidCategory(typed) ? typed : undefined);
          if (chosen === undefined) {
            return;
          }
          resolve(chosen);
          quickPick.hide();
        }),
        quickPick.onDidHide(() => resolve(undefined)),
      );
      quickPick.show();
    });
    for (const subscription of subscriptions) {
      subscription.dispose();
    }
    quickPick.dispose();
    return category;
  }

  private runParams(args: RunArguments & { command: string; cwd: string }, folder: vscode.WorkspaceFolder | undefined, environment: string | undefined): RunParams {
    const params: RunParams = { command: args.command, cwd: args.cwd };
    const jobEnvironment = environmentFor(folder, environment);
    if (jobEnvironment !== undefined) {
      params.environment = jobEnvironment;
    }
    const envFile = envFileFor(folder);
    if (envFile !== undefined) {
      params.envFile = envFile;
    }
    if (args.name !== undefined) {
      params.name = args.name;
    }
    if (args.delay !== undefined) {
      params.delay = args.delay;
    }
    return params;
  }

  /**
   * Returns the category to send: the requested one, the user's choice, or undefined for the
   * server's guess. Returns null when the user cancelled or the preview failed.
   */
  private async chooseCategory(params: RunParams, requested: string | undefined, folder: vscode.WorkspaceFolder | undefined): Promise<string | null | undefined> {
    if (requested !== undefined || !extensionSettings(folder?.uri).askCategory) {
      return requested;
    }
    let preview: Preview;
    try {
      preview = await this.backend.request<Preview>(Methods.preview, params);
    } catch (error) {
      traceError(`Preview of "${params.command}" failed`, error);
      void showError(`bgrun: cannot run "${params.command}": ${(error as Error).message}`);
      return null;
    }
    return (await this.promptCategory(preview)) ?? null;
  }

  /** Submits the job and announces it; returns undefined when the user cancelled or the server rejected it. */
  private async submit(args: RunArguments & { command: string; cwd: string }, folder: vscode.WorkspaceFolder | undefined, environment: string | undefined): Promise<Job | undefined> {
    const params = this.runParams(args, folder, environment);
    const category = await this.chooseCategory(params, args.category, folder);
    if (category === null) {
      return undefined;
    }
    if (category !== undefined) {
      params.category = category;
    }

    let job: Job;
    try {
      job = await this.backend.request<Job>(Methods.run, params);
    } catch (error) {
      traceError(`Running "${args.command}" failed`, error);
      void showError(`bgrun: running "${args.command}" failed: ${(error as Error).message}`);
      return undefined;
    }
    traceInfo(`Job ${job.id} submitted: ${job.command} (category ${job.category}, log ${job.log_path})`);
    this.jobs.update(job);
    await this.context.globalState.update(HISTORY_KEY, addToHistory(this.history(), args.command));
    void announceStart(job, this.actions);
    return job;
  }
}
