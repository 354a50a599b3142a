// extension.js activated against stand-ins for the `vscode` API and vscode-languageclient → prints, as JSON,
// how it starts the language server (command, args, transport, documents) and what a failed start shows.
//   node test/activate.cjs [fail]
"use strict";

const Module = require("node:module");
const path = require("node:path");

const seen = { started: 0, errors: [], watchers: [] };
const settings = { "server.command": undefined, "server.args": undefined };

const vscode = {
  workspace: {
    getConfiguration: (section) => ({ get: (key) => (section === "dial" ? settings[key] : undefined) }),
    createFileSystemWatcher: (glob) => {
      seen.watchers.push(glob);
      return { glob };
    },
  },
  window: { showErrorMessage: (message) => seen.errors.push(message) },
};

class LanguageClient {
  constructor(id, name, server, client) {
    Object.assign(seen, { id, name, server, documentSelector: client.documentSelector });
  }
  async start() {
    seen.started += 1;
    if (process.argv[2] === "fail") throw new Error("spawn dialc ENOENT");
  }
  async stop() {
    seen.stopped = true;
  }
}

const fakes = { vscode, "vscode-languageclient/node": { LanguageClient, TransportKind: { stdio: 0, ipc: 1 } } };
const load = Module._load;
Module._load = function (request, parent, isMain) {
  return request in fakes ? fakes[request] : load.call(this, request, parent, isMain);
};

(async () => {
  const extension = require(path.join(__dirname, "..", "extension.js"));
  const context = { subscriptions: [] };
  await extension.activate(context);
  seen.subscriptions = context.subscriptions.length;
  await extension.deactivate();
  process.stdout.write(JSON.stringify(seen) + "\n");
})();
