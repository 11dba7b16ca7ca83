// The Models panel: every version of each model with its test metrics, which one is served,
// pinning (roll back or forward) and unpinning, and the admin token those actions need.

import { adminToken, getJson, request, setAdminToken } from "./api.js";
import { $, describeMetrics, el, events, formatDuration, formatNumber, formatTime, showError } from "./ui.js";

/** A version's state in words: the API's values are identifiers. */
const STATE_WORDS = {
  serving: "serving",
  loading: "loading…",
  failed: "failed to load",
  on_disk: "ready, not served",
};

export function initModels() {
  const error = $("#models-error");
  const status = $("#models-status");
  const tokenInput = $("#admin-token");

  tokenInput.value = adminToken();
  // A token given in the dialog the service's refusal opened shows here too.
  window.addEventListener("admin-token-changed", () => {
    if (tokenInput.value.trim() !== adminToken()) tokenInput.value = adminToken();
  });
  tokenInput.addEventListener("input", () => setAdminToken(tokenInput.value.trim()));
  $("#admin-token-forget").addEventListener("click", () => {
    tokenInput.value = "";
    setAdminToken("");
    status.textContent = "The admin token is forgotten.";
  });

  async function refresh() {
    try {
      const list = await getJson("/models");
      render(list.models);
      showError(error, null);
    } catch (err) {
      showError(error, err);
    }
  }

  async function change(model, method, version) {
    showError(error, null);
    status.textContent = version ? `Loading ${model} version ${version}…` : `Unpinning ${model}…`;
    try {
      const info = await request(method, `/models/${encodeURIComponent(model)}/served-version`, {
        json: version ? { version } : undefined,
      });
      status.textContent =
        `${info.name} now serves version ${info.served_version ?? "none"}` +
        (info.pinned_version ? " (pinned)." : " (the newest promoted version).");
      await refresh();
    } catch (err) {
      status.textContent = "";
      showError(error, err);
    }
  }

  function actionFor(model, version) {
    const served = model.served_version;
    if (served === version.version) {
      // Keeping the served version against newer promoted ones is offered, in words, beside
      // "Serving version N" above the table.
      return el("span", { class: "muted" }, model.pinned_version === version.version ? "pinned" : "served");
    }
    let label = `Serve v${version.version}`;
    if (served !== null && version.version < served) label = `Roll back to v${version.version}`;
    return el(
      "button",
      {
        type: "button",
        class: "small",
        disabled: version.state === "failed",
        onclick: () => change(model.name, "PUT", version.version),
      },
      label,
    );
  }

  function render(models) {
    const container = $("#models-list");
    container.replaceChildren(
      ...models.map((model) => {
        const keyMetric = model.versions.find((v) => v.promotion?.metric)?.promotion.metric;
        const served =
          model.served_version === null
            ? "No version is served."
            : `Serving version ${model.served_version}` +
              (model.pinned_version ? ", pinned." : ", the newest promoted version.");
        // Say what Unpin would do before anyone presses it: the newest *promoted* version, which
        // is not always the newest one on disk.
        let afterUnpin = null;
        if (model.pinned_by === "settings") {
          afterUnpin = `Pinned by the service's settings (PERCEPTRON_PINNED_VERSIONS): Unpin cannot change it.`;
        } else if (model.pinned_by === "api") {
          afterUnpin =
            model.unpinned_version === null
              ? "Unpin would serve nothing: no version is promoted."
              : `Unpin would serve version ${model.unpinned_version}, the newest promoted version.`;
        }
        return el(
          "article",
          { class: "model-card", "data-model": model.name, "data-served": model.served_version ?? "" },
          el(
            "header",
            {},
            el("h3", {}, model.name),
            el("span", { class: `badge ${model.state}` }, model.state),
          ),
          el(
            "p",
            { class: "served" },
            served,
            " ",
            model.pinned_by === "api"
              ? el("button", { type: "button", class: "small", onclick: () => change(model.name, "DELETE") }, "Unpin")
              : null,
            model.pinned_by === null && model.served_version !== null
              ? el(
                  "button",
                  {
                    type: "button",
                    class: "small",
                    title: "Pin it: a newer promoted version will not replace it until you unpin",
                    onclick: () => change(model.name, "PUT", model.served_version),
                  },
                  `Keep v${model.served_version}`,
                )
              : null,
          ),
          afterUnpin ? el("p", { class: "after-unpin muted" }, afterUnpin) : null,
          model.error ? el("p", { class: "error" }, model.error) : null,
          el(
            "div",
            { class: "table-scroll" },
            el(
              "table",
              { class: "cards" },
              el("caption", { class: "visually-hidden" }, `Versions of ${model.name}`),
              el(
                "thead",
                {},
                el("tr", {}, ["Version", "State", "Promoted", "Created", "Test metrics", "Parameters", "Trained in", ""].map((h) => el("th", { scope: "col" }, h))),
              ),
              el(
                "tbody",
                {},
                model.versions.map((version) =>
                  el(
                    "tr",
                    {
                      "data-version": version.version,
                      class: version.version === model.served_version ? "serving" : null,
                    },
                    el("th", { scope: "row", "data-label": "Version" }, `v${version.version}`, version.version === model.served_version ? el("span", { class: "badge serving" }, "served") : null),
                    el(
                      "td",
                      { "data-label": "State", "data-state": version.state },
                      el("span", {}, STATE_WORDS[version.state] ?? version.state, version.error ? el("small", { class: "error-text" }, ` ${version.error}`) : null),
                    ),
                    el(
                      "td",
                      { class: "promotion", "data-label": "Promoted" },
                      // One box for the badge and its reason: a card row (phones) lays the
                      // cell out as a flex row, which would stretch the badge beside long text.
                      el(
                        "span",
                        {},
                        el("span", { class: `badge ${version.promoted ? "promoted" : "not-promoted"}` }, version.promoted ? "promoted" : "not promoted"),
                        el("small", { class: "muted" }, ` ${version.promotion_reason}`),
                      ),
                    ),
                    el("td", { "data-label": "Created" }, formatTime(version.created_at)),
                    el("td", { class: "metrics", "data-label": "Test metrics" }, describeMetrics(version.metrics, keyMetric)),
                    el("td", { class: "num", "data-label": "Parameters" }, formatNumber(version.parameters ?? NaN)),
                    el("td", { class: "num", "data-label": "Trained in" }, formatDuration(version.training_seconds)),
                    el("td", {}, actionFor(model, version)),
                  ),
                ),
              ),
            ),
          ),
        );
      }),
    );
  }

  $("#models-refresh").addEventListener("click", refresh);
  events.addEventListener("panel-shown", (event) => {
    if (event.detail === "models") refresh();
  });
  events.addEventListener("job-finished", refresh);
  refresh();
}
