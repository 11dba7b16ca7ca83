// The Training panel: start a job (POST /jobs), follow it live through its server-sent events
// (GET /jobs/{id}/events) with a progress bar and loss/metric curves, cancel it, and list the
// recent jobs with their results.

import { getJson, postJson } from "./api.js";
import { FINAL, JobMonitor, promotionText } from "./job-monitor.js";
import { jobVocabulary, renderFields } from "./training-form.js";
import { $, accuracySummary, describeMetrics, el, events, formatTime, showError } from "./ui.js";

const LIST_SIZE = 10;
const LIST_POLL_MS = 5000;

export async function initTraining() {
  const form = $("#training-form");
  const modelSelect = $("#training-model");
  const promoteSelect = $("#training-promote");
  const extra = $("#training-extra");
  const formError = $("#training-error");

  let vocabulary;
  try {
    vocabulary = jobVocabulary(await getJson("/openapi.json"));
  } catch (err) {
    showError(formError, err, "The training form cannot be built.");
    return;
  }

  modelSelect.append(...Object.keys(vocabulary.models).map((name) => el("option", { value: name }, name)));
  if (vocabulary.promote?.enum) {
    promoteSelect.append(...vocabulary.promote.enum.map((value) => el("option", { value }, value)));
    promoteSelect.value = vocabulary.promote.default ?? vocabulary.promote.enum[0];
    $("#training-promote-hint").textContent = vocabulary.promote.description ?? "";
  }
  let readFields = renderFields($("#training-fields"), vocabulary, modelSelect.value);
  modelSelect.addEventListener("change", () => {
    readFields = renderFields($("#training-fields"), vocabulary, modelSelect.value);
  });

  const monitor = new JobMonitor(() => refreshJobs());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(formError, null);
    if (!form.reportValidity()) return;
    const hyperparameters = readFields();
    if (extra.value.trim()) {
      let more;
      try {
        more = JSON.parse(extra.value);
      } catch (err) {
        showError(formError, `More hyperparameters: not valid JSON (${err.message}).`);
        extra.focus();
        return;
      }
      if (typeof more !== "object" || more === null || Array.isArray(more)) {
        showError(formError, 'More hyperparameters: give a JSON object such as {"seed": 3}.');
        return;
      }
      Object.assign(hyperparameters, more);
    }
    const start = $("#training-start");
    start.disabled = true;
    try {
      const job = await postJson("/jobs", {
        model: modelSelect.value,
        promote: promoteSelect.value,
        hyperparameters,
      });
      monitor.follow(job);
      refreshJobs();
    } catch (err) {
      showError(formError, err);
    } finally {
      start.disabled = false;
    }
  });

  // The recent jobs.
  const listError = $("#jobs-error");
  let pollTimer = null;

  async function refreshJobs() {
    clearTimeout(pollTimer);
    let list;
    try {
      list = await getJson(`/jobs?limit=${LIST_SIZE}`);
      showError(listError, null);
    } catch (err) {
      showError(listError, err);
      return;
    }
    renderJobs(list);
    const active = list.jobs.some((job) => !FINAL.has(job.status));
    if (active && !$("#panel-training").hidden) pollTimer = setTimeout(refreshJobs, LIST_POLL_MS);
  }

  function renderJobs(list) {
    const body = $("#jobs-body");
    body.replaceChildren(
      ...list.jobs.map((job) => {
        const key = job.promotion?.metric;
        const result =
          job.status === "succeeded"
            ? [
                `version ${job.version}`,
                accuracySummary(job.metrics) || describeMetrics(job.metrics, key).split(" · ").slice(0, 2).join(" · "),
                promotionText(job.promotion),
              ]
                .filter(Boolean)
                .join("; ")
            : job.error ?? (job.progress?.fraction != null ? `${Math.round(job.progress.fraction * 100)}%` : "");
        return el(
          "tr",
          { "data-job": job.id, "data-status": job.status },
          el("td", { "data-label": "Job" }, el("code", { title: job.id }, job.id.slice(0, 8))),
          el("td", { "data-label": "Model" }, job.model),
          el("td", { "data-label": "Status" }, el("span", { class: `badge ${job.status}` }, job.status)),
          el("td", { "data-label": "Created" }, formatTime(job.created_at)),
          el(
            "td",
            { class: "job-result", "data-label": "Result" },
            result,
            // The service sends the exception behind a failure to administrators only.
            job.status === "failed" && job.error_detail
              ? el("small", { class: "error-detail-text" }, job.error_detail)
              : null,
          ),
          el(
            "td",
            {},
            el(
              "button",
              { type: "button", class: "small", onclick: () => monitor.follow(job), "aria-label": `Show job ${job.id.slice(0, 8)}` },
              "Show",
            ),
          ),
        );
      }),
    );
    $("#jobs-empty").hidden = list.jobs.length > 0;
    $("#jobs-count").textContent = list.total > list.jobs.length ? `newest ${list.jobs.length} of ${list.total}` : "";
  }

  $("#jobs-refresh").addEventListener("click", refreshJobs);
  events.addEventListener("panel-shown", (event) => {
    if (event.detail === "training") refreshJobs();
  });
  refreshJobs();
}
