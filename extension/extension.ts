// Entry point: creates each part of the extension and connects them. Each part lives in its own module.

import * as vscode from "vscode";
import { registerCommands } from "./commands";
import { JobActions } from "./jobActions";
import { JobCache } from "./jobs";
import { registerLogger, traceError, traceInfo } from "./logging";
import { LogViewProvider } from "./logView";
import { registerNotifications } from "./notifications";
import { PythonExtension } from "./pythonExtension";
import { RunFlow } from "./runCommand";
import { Backend } from "./server";
import { needsRestart } from "./settings";
import { BackendSetup } from "./setup";
import { StatusBar } from "./statusBar";
import { JobTree } from "./tree";

let backend: Backend | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("bgrun", { log: true });
  registerLogger(output);
  traceInfo(`bgrun ${context.extension.packageJSON.version} activating in ${vscode.env.appName} ${vscode.version}`);

  const jobs = new JobCache(Date.now());
  const python = new PythonExtension();
  const setup = new BackendSetup(context, python);
  backend = new Backend(output, setup, jobs);
  const logView = new LogViewProvider();
  const actions = new JobActions(backend, jobs, logView);
  const runFlow = new RunFlow(context, backend, jobs, python, actions);
  const activeBackend = backend;

  context.subscriptions.push(
    output,
    jobs,
    python,
    backend,
    logView,
    new StatusBar(backend, jobs),
    new JobTree(jobs),
    registerNotifications(jobs, backend.onDidFindDrift),
    ...registerCommands({ backend, jobs, actions, runFlow, logView, output }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (needsRestart(event)) {
        traceInfo("bgrun.python changed; restarting the backend");
        void activeBackend.restart();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      traceInfo("The workspace is trusted now; starting the backend");
      void activeBackend.start();
    }),
    python.onDidChangeInterpreter(() => {
      if (activeBackend.backendPython?.source === "pythonExtension") {
        traceInfo("The selected Python interpreter changed; restarting the backend");
        void activeBackend.restart();
      }
    }),
  );

  // Start in the background: activation must not wait for Python or pip.
  backend.start().catch((error) => traceError("Starting the backend failed", error));
}

export async function deactivate(): Promise<void> {
  // Jobs are detached from the backend, so stopping it leaves every job running.
  await backend?.stop();
}
