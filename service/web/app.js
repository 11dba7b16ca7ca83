// The page's entry point: switches between the six panels (ARIA tabs, one per URL hash) and
// starts each panel's module.

import { initDigit } from "./digit.js";
import { initModels } from "./models.js";
import { initMpg } from "./mpg.js";
import { initNumber } from "./number.js";
import { initSamples } from "./samples.js";
import { initTokenDialog } from "./token-dialog.js";
import { initTraining } from "./training.js";
import { events } from "./ui.js";

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));

  function select(tab, { focus = false, remember = true } = {}) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      panelOf(other).hidden = !selected;
    }
    if (focus) tab.focus();
    const name = tab.dataset.panel;
    if (remember && location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    events.dispatchEvent(new CustomEvent("panel-shown", { detail: name }));
  }

  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(index + 1) % tabs.length],
        ArrowLeft: tabs[(index - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        select(next, { focus: true });
      }
    });
  }

  function fromHash() {
    const name = location.hash.slice(1);
    select(tabs.find((tab) => tab.dataset.panel === name) ?? tabs[0], { remember: false });
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

initTokenDialog();
initDigit();
initNumber();
initModels();
initSamples();
const loading = [initMpg(), initTraining()];
initTabs();
// Marks the page as fully built (the forms need /mpg/features and /openapi.json first).
Promise.allSettled(loading).then(() => {
  document.body.dataset.ready = "true";
});
