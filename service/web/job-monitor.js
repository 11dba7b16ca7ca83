// Following one training job live: its server-sent events (GET /jobs/{id}/events) drive a
// progress bar, loss and metric curves per epoch and the final outcome; it can be cancelled.

import { getJson, request } from "./api.js";
import { renderLineChart } from "./charts.js";
import { $, accuracySummary, describeMetrics, events, formatDuration, showError } from "./ui.js";

export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

const METRIC_TITLES = { mpg_mae: "MAE (mpg)", accuracy: "accuracy" };

export function promotionText(promotion) {
  if (!promotion) return "";
  return promotion.promoted ? `served (${promotion.reason})` : `not served (${promotion.reason})`;
}

/** The metric plotted beside the loss: accuracy for digits, mpg's error in miles per gallon
 * (the unit of its test MAE: its loss and `mae` are in standardised units), else the first
 * logged metric that is not the loss itself under another name. */
function metricKey(history) {
  const keys = [...new Set(history.flatMap((record) => Object.keys(record)))];
  if (keys.includes("accuracy")) return "accuracy";
  if (keys.includes("mpg_mae")) return "mpg_mae";
  const skip = new Set(["stage", "epoch", "epochs", "loss", "learning_rate"]);
  const candidates = keys.filter((key) => !skip.has(key) && !key.startsWith("val_"));
  const sameAsLoss = (key) =>
    history.every((record) => Math.abs(record[key] - record.loss) <= 1e-6 * Math.max(1, Math.abs(record.loss)));
  return candidates.find((key) => !sameAsLoss(key)) ?? candidates[0] ?? null;
}

/** Follows one job's event stream and draws its progress and curves. */
export class JobMonitor {
  constructor(onChange) {
    this.onChange = onChange;
    this.source = null;
    this.job = null;
    this.history = [];
    this.drawQueued = false;
    this.error = $("#job-error");
    $("#job-cancel").addEventListener("click", () => this.cancel());
  }

  follow(job) {
    this.source?.close();
    this.job = { ...job };
    this.history = [];
    this.progress = job.progress ?? null;
    showError(this.error, null);
    $("#job-box").hidden = false;
    this.render();
    if (job.status === "failed") this.fetchErrorDetail(job.id);
    this.source = new EventSource(`/jobs/${encodeURIComponent(job.id)}/events`);
    const source = this.source;
    source.addEventListener("job", (event) => {
      const snapshot = JSON.parse(event.data);
      this.job = { ...this.job, ...snapshot };
      this.progress = snapshot.progress ?? this.progress;
      this.render();
    });
    source.addEventListener("epoch", (event) => {
      const data = JSON.parse(event.data);
      this.history.push(data.record);
      this.progress = data.progress;
      this.render();
    });
    source.addEventListener("status", (event) => {
      const data = JSON.parse(event.data);
      this.job = { ...this.job, ...data };
      if (data.status === "queued") {
        // Handed back by a stopping worker: it runs again from the start, so its epochs so far
        // no longer describe it.
        this.history = [];
        this.progress = null;
      }
      if (FINAL.has(data.status)) {
        // The stream ends after the final status; EventSource would otherwise reconnect.
        source.close();
        if (this.source === source) this.source = null;
        if (data.status === "succeeded") this.progress = { ...this.progress, fraction: 1, eta_s: 0 };
        if (data.status === "failed") this.fetchErrorDetail(this.job.id);
        events.dispatchEvent(new CustomEvent("job-finished", { detail: this.job }));
      }
      this.render();
      this.onChange();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        showError(this.error, "Lost the job's event stream. Press Show in the list to follow it again.");
      }
    });
  }

  /** The exception behind a failure (the file it could not read, the setting to change):
   * `error_detail`, which the service gives administrators only. Asked for without opening the
   * token dialog: anyone else keeps the public reason. */
  async fetchErrorDetail(id) {
    if (this.job?.error_detail) return;
    try {
      const job = await getJson(`/jobs/${encodeURIComponent(id)}`, { askToken: false });
      if (this.job?.id === id && job.error_detail) {
        this.job = { ...this.job, error_detail: job.error_detail };
        this.render();
      }
    } catch {
      /* the public reason stays; nothing more to say */
    }
  }

  async cancel() {
    if (!this.job) return;
    showError(this.error, null);
    try {
      const job = await request("POST", `/jobs/${encodeURIComponent(this.job.id)}/cancel`);
      this.job = { ...this.job, ...job };
      this.render();
    } catch (err) {
      showError(this.error, err);
    }
  }

  render() {
    const job = this.job;
    const final = FINAL.has(job.status);
    $("#job-title").textContent = `Job ${job.id.slice(0, 8)} · ${job.model}`;
    const badge = $("#job-status");
    badge.textContent = job.cancel_requested && !final ? "cancelling" : job.status;
    badge.className = `badge ${job.status}`;
    $("#job-box").dataset.status = job.status;
    $("#job-cancel").disabled = final || job.cancel_requested;

    const bar = $("#job-progress");
    const progress = this.progress ?? {};
    const text = [];
    if (job.status === "queued") {
      bar.removeAttribute("value"); // indeterminate while waiting for a worker
      text.push("waiting for a worker");
    } else {
      const fraction = typeof progress.fraction === "number" ? progress.fraction : 0;
      bar.value = fraction;
      text.push(`${Math.round(fraction * 100)}%`);
      // An mpg ensemble trains its members one after another: "member 2/5 · epoch 340/1000",
      // not an epoch count of all of them together.
      if (progress.stage && progress.stage !== "train") text.push(progress.stage);
      if (progress.epoch) text.push(`epoch ${progress.epoch}/${progress.epochs}`);
      if (!final && progress.eta_s) text.push(`about ${formatDuration(progress.eta_s)} left`);
    }
    $("#job-progress-text").textContent = text.join(" · ");

    const outcome = $("#job-outcome");
    if (job.status === "succeeded") {
      const key = job.promotion?.metric;
      const accuracies = accuracySummary(job.metrics);
      outcome.textContent =
        `Version ${job.version} exported. ` +
        (accuracies ? `Accuracy: ${accuracies}. ` : "") +
        `Test metrics: ${describeMetrics(job.metrics, key) || "none"}. ` +
        `Promotion: ${promotionText(job.promotion) || "–"}.`;
    } else if (final) {
      outcome.textContent = `${job.status[0].toUpperCase()}${job.status.slice(1)}: ${job.error ?? "no reason given"}.`;
    } else {
      outcome.textContent = "";
    }
    const detail = $("#job-error-detail");
    detail.hidden = !(job.status === "failed" && job.error_detail);
    $("#job-error-detail-text").textContent = job.error_detail ?? "";
    this.queueDraw();
  }

  queueDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.drawCharts();
    });
  }

  drawCharts() {
    const history = this.history;
    const status = this.job?.status;
    const empty =
      status === "failed"
        ? "the job failed before its first epoch"
        : status === "cancelled"
          ? "cancelled before its first epoch"
          : status === "succeeded"
            ? "no epochs recorded"
            : "waiting for the first epoch…";
    const stages = [];
    history.forEach((record, index) => {
      if (index === 0 || record.stage !== history[index - 1].stage) stages.push({ index, label: record.stage });
    });
    const column = (key) => history.map((record) => record[key] ?? null);
    renderLineChart($("#job-loss-chart"), {
      title: "Loss",
      stages,
      empty,
      series: [
        { name: "training", values: column("loss"), className: "train" },
        { name: "validation", values: column("val_loss"), className: "val" },
      ],
    });
    const metric = metricKey(history);
    renderLineChart($("#job-metric-chart"), {
      title: METRIC_TITLES[metric] ?? (metric ? metric.replace(/_/g, " ") : "Metric"),
      stages,
      empty,
      series: metric
        ? [
            { name: "training", values: column(metric), className: "train" },
            { name: "validation", values: column(`val_${metric}`), className: "val" },
          ]
        : [],
    });
  }
}
