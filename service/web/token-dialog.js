// Asking for the admin token when the service wants it: a dialog that answers the token typed
// (kept for this tab's session by api.js) or null when the person cancels.

import { setTokenPrompt } from "./api.js";
import { $ } from "./ui.js";

export function initTokenDialog() {
  const dialog = $("#token-dialog");
  const input = $("#token-dialog-input");
  const reason = $("#token-dialog-reason");

  setTokenPrompt(
    (why) =>
      new Promise((resolve) => {
        reason.textContent = why;
        input.value = "";
        dialog.addEventListener(
          "close",
          () => resolve(dialog.returnValue === "use" && input.value.trim() ? input.value.trim() : null),
          { once: true },
        );
        dialog.showModal();
        input.focus();
      }),
  );
}
