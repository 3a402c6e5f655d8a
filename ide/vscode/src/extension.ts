/**
 * The extension's commands:
 *
 * - "Ask Neurectomy": asks the local Neurectomy service about the selected text and streams the answer
 *   into the "Neurectomy" output panel. Cancelling the progress notification closes the connection,
 *   which cancels the generation on the service (its model slot is freed).
 * - "Neurectomy: Set API Key" / "Clear API Key": the key (for a service with auth on) is kept in the
 *   editor's secret storage (`context.secrets`), never in settings files.
 * - "Neurectomy: Select Model": a picker of the served generation models (`GET /v1/models`); the
 *   choice is saved in the `neurectomy.model` setting (empty: the service's default model).
 */

import * as vscode from "vscode";

import { listModels, NeurectomyError, streamGenerate } from "./client";

const DEFAULT_QUESTION = "Explain what this code does.";
const API_KEY_SECRET = "neurectomy.apiKey";

export function activate(context: vscode.ExtensionContext): void {
  const channel = vscode.window.createOutputChannel("Neurectomy");
  context.subscriptions.push(
    channel,
    vscode.commands.registerCommand("neurectomy.ask", () => ask(context, channel)),
    vscode.commands.registerCommand("neurectomy.setApiKey", () => setApiKey(context)),
    vscode.commands.registerCommand("neurectomy.clearApiKey", async () => {
      await context.secrets.delete(API_KEY_SECRET);
      void vscode.window.showInformationMessage("Neurectomy: API key removed.");
    }),
    vscode.commands.registerCommand("neurectomy.selectModel", () => selectModel(context)),
  );
}

export function deactivate(): void {
  // Nothing to release: each request ends with its command.
}

function baseUrl(): string {
  return vscode.workspace.getConfiguration("neurectomy").get<string>("baseUrl", "http://127.0.0.1:8420");
}

function describe(err: unknown, url: string): string {
  return err instanceof NeurectomyError
    ? `${err.code}${err.field ? ` (${err.field})` : ""}: ${err.message}` +
        (err.status === 401 ? ' (run "Neurectomy: Set API Key")' : "")
    : `cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`;
}

async function setApiKey(context: vscode.ExtensionContext): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: "Neurectomy API key",
    prompt: "An API key from `neurectomy keys create` (stored in the editor's secret storage)",
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) return;
  if (key.trim() === "") {
    await context.secrets.delete(API_KEY_SECRET);
  } else {
    await context.secrets.store(API_KEY_SECRET, key.trim());
  }
  void vscode.window.showInformationMessage("Neurectomy: API key saved.");
}

async function selectModel(context: vscode.ExtensionContext): Promise<void> {
  const url = baseUrl();
  const apiKey = await context.secrets.get(API_KEY_SECRET);
  let models;
  try {
    models = (await listModels(url, apiKey)).filter((m) => m.kind === "generation");
  } catch (err) {
    void vscode.window.showErrorMessage(`Neurectomy: ${describe(err, url)}`);
    return;
  }
  const config = vscode.workspace.getConfiguration("neurectomy");
  const current = config.get<string>("model", "");
  const items: (vscode.QuickPickItem & { id: string })[] = [
    { id: "", label: "Service default", description: current === "" ? "current" : undefined },
    ...models.map((m) => ({
      id: m.id,
      label: m.id,
      description: [m.status, m.default ? "default" : "", m.id === current ? "current" : ""]
        .filter(Boolean)
        .join(" · "),
    })),
  ];
  const picked = await vscode.window.showQuickPick(items, { title: "Neurectomy model" });
  if (picked === undefined) return;
  await config.update("model", picked.id, vscode.ConfigurationTarget.Global);
}

async function ask(context: vscode.ExtensionContext, channel: vscode.OutputChannel): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const selection = editor ? editor.document.getText(editor.selection) : "";
  if (!editor || selection.trim() === "") {
    void vscode.window.showInformationMessage("Neurectomy: select some text first.");
    return;
  }
  const question = await vscode.window.showInputBox({
    title: "Ask Neurectomy",
    prompt: "Your question about the selection",
    placeHolder: DEFAULT_QUESTION,
  });
  if (question === undefined) return; // dismissed
  const config = vscode.workspace.getConfiguration("neurectomy");
  const url = baseUrl();
  const apiKey = await context.secrets.get(API_KEY_SECRET);
  const model = config.get<string>("model", "") || undefined;
  const language = editor.document.languageId;
  const content = `${question.trim() || DEFAULT_QUESTION}\n\n\`\`\`${language}\n${selection}\n\`\`\``;

  channel.show(true);
  channel.appendLine(`> ${question.trim() || DEFAULT_QUESTION}`);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "Neurectomy is answering…", cancellable: true },
    async (_progress, token) => {
      const abort = new AbortController();
      const subscription = token.onCancellationRequested(() => abort.abort());
      try {
        const result = await streamGenerate(
          url,
          {
            messages: [{ role: "user", content }],
            max_tokens: config.get<number>("maxTokens", 512),
            temperature: config.get<number>("temperature", 0.2),
            timeout_s: config.get<number>("timeoutSeconds", 300),
            model,
          },
          { onToken: (text) => channel.append(text), signal: abort.signal, apiKey },
        );
        const u = result.usage;
        channel.appendLine(
          `\n\n[${result.model}: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion tokens, ` +
            `finish: ${result.finish_reason}]\n`,
        );
      } catch (err) {
        if (abort.signal.aborted) {
          channel.appendLine("\n\n[cancelled]\n");
          return;
        }
        const message = describe(err, url);
        channel.appendLine(`\n\n[error] ${message}\n`);
        void vscode.window.showErrorMessage(`Neurectomy: ${message}`);
      } finally {
        subscription.dispose();
      }
    },
  );
}
