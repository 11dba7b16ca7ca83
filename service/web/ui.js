// Small DOM helpers shared by the panels: building elements, showing errors, formatting numbers.

/** Creates an element: el("td", { class: "num" }, "42"). Attributes starting with "on" bind events. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Shows `error` (an ApiError, an Error or a string) in an alert element; null hides it. */
export function showError(target, error, hint = "") {
  if (!error) {
    target.hidden = true;
    target.textContent = "";
    return;
  }
  let message = typeof error === "string" ? error : error.message || String(error);
  if (error?.needsToken) {
    message += error.sentToken === false && error.status === 403
      ? " Start the service with PERCEPTRON_ADMIN_TOKEN set to administer it from here."
      : " Enter the admin token in the Models panel.";
  }
  if (hint) message += ` ${hint}`;
  target.textContent = message;
  target.hidden = false;
}

export function formatNumber(value, digits = 3) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  if (Number.isInteger(value)) return value.toLocaleString("en");
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(2);
  return value.toLocaleString("en", { maximumSignificantDigits: digits + 1 });
}

export function formatPercent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** The scalar test metrics of a model version or job, e.g. "accuracy 0.975 · macro_f1 0.974". */
export function describeMetrics(metrics, keyMetric) {
  if (!metrics) return "";
  const names = Object.keys(metrics).filter(
    (name) => typeof metrics[name] === "number" && name !== "samples",
  );
  if (keyMetric && names.includes(keyMetric)) {
    names.splice(names.indexOf(keyMetric), 1);
    names.unshift(keyMetric);
  }
  return names.map((name) => `${name} ${formatNumber(metrics[name])}`).join(" · ");
}

/** A digit job's two accuracies, "MNIST test 99.62% · user samples 92.50% (40 held out, 160
 * trained on)", when it trained with accepted samples; the MNIST one alone otherwise; "" for
 * models without an accuracy. */
export function accuracySummary(metrics) {
  if (typeof metrics?.accuracy !== "number") return "";
  const parts = [`MNIST test ${formatPercent(metrics.accuracy, 2)}`];
  if (typeof metrics.user_samples_accuracy === "number") {
    parts.push(
      `user samples ${formatPercent(metrics.user_samples_accuracy, 2)} ` +
        `(${metrics.user_samples_count} held out, ${metrics.user_samples_trained} trained on)`,
    );
  }
  return parts.join(" · ");
}

/** Lets the panels tell each other about changes without importing each other. */
export const events = new EventTarget();
