// Charts drawn as inline SVG: the digit probabilities (bars) and training curves (lines).
// They scale with their container (viewBox) and take their colours from styles.css.

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Draws ten probability bars labelled 0-9, the most probable one highlighted. */
export function renderBarChart(svg, probabilities) {
  const width = 320;
  const height = 170;
  const top = 20;
  const bottom = 22;
  const plotHeight = height - top - bottom;
  const slot = width / probabilities.length;
  const best = probabilities.indexOf(Math.max(...probabilities));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  svg.append(svgEl("line", { x1: 0, x2: width, y1: top + plotHeight, y2: top + plotHeight, class: "axis" }));
  probabilities.forEach((p, digit) => {
    const barHeight = Math.max(p * plotHeight, p > 0 ? 1 : 0);
    const x = digit * slot + slot * 0.15;
    const group = svgEl("g", { class: digit === best ? "bar best" : "bar" });
    group.append(
      svgEl("rect", { x, y: top + plotHeight - barHeight, width: slot * 0.7, height: barHeight, rx: 2 }),
      svgEl("text", { x: x + slot * 0.35, y: height - 6, "text-anchor": "middle", class: "label" }, digit),
    );
    if (p >= 0.01) {
      const text = p >= 0.995 ? "100" : (p * 100).toFixed(0);
      group.append(
        svgEl(
          "text",
          { x: x + slot * 0.35, y: top + plotHeight - barHeight - 5, "text-anchor": "middle", class: "value" },
          `${text}%`,
        ),
      );
    }
    group.append(svgEl("title", {}, `${digit}: ${(p * 100).toFixed(2)}%`));
    svg.append(group);
  });
  const ranked = probabilities
    .map((p, digit) => ({ p, digit }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3)
    .map(({ p, digit }) => `${digit}: ${(p * 100).toFixed(1)}%`);
  svg.setAttribute("aria-label", `Probabilities, highest first: ${ranked.join(", ")}`);
}

/** Round tick values covering [low, high], about `count` of them. */
function niceTicks(low, high, count = 5) {
  if (low === high) {
    const pad = Math.abs(low) * 0.1 || 1;
    low -= pad;
    high += pad;
  }
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? rough;
  const first = Math.floor(low / step) * step;
  const last = Math.ceil(high / step) * step;
  const ticks = [];
  for (let v = first; v <= last + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function tickLabel(value) {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

/**
 * Draws lines over epochs. `series`: [{ name, values: [number|null per epoch], className }];
 * `stages`: [{ index, label }] marks where a new stage (ensemble member) starts; `empty` is
 * what the chart says while it has no epoch to draw.
 */
export function renderLineChart(svg, { title, series, stages = [], empty = "waiting for the first epoch…" }) {
  const width = 420;
  const height = 230;
  const margin = { top: 28, right: 12, bottom: 30, left: 52 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();

  const count = Math.max(0, ...series.map((s) => s.values.length));
  const finite = series.flatMap((s) => s.values.filter((v) => typeof v === "number" && Number.isFinite(v)));
  svg.append(svgEl("text", { x: margin.left, y: 16, class: "chart-title" }, title));
  if (count === 0 || finite.length === 0) {
    svg.append(
      svgEl(
        "text",
        { x: margin.left + plotWidth / 2, y: margin.top + plotHeight / 2, "text-anchor": "middle", class: "empty" },
        empty,
      ),
    );
    svg.setAttribute("aria-label", `${title}: ${empty}`);
    return;
  }

  const yTicks = niceTicks(Math.min(...finite), Math.max(...finite));
  const yMin = yTicks[0];
  const yMax = yTicks[yTicks.length - 1];
  const xMax = Math.max(count, 2);
  const x = (index) => margin.left + (index / (xMax - 1)) * plotWidth;
  const y = (value) => margin.top + plotHeight - ((value - yMin) / (yMax - yMin || 1)) * plotHeight;

  for (const tick of yTicks) {
    svg.append(
      svgEl("line", { x1: margin.left, x2: margin.left + plotWidth, y1: y(tick), y2: y(tick), class: "grid" }),
      svgEl("text", { x: margin.left - 6, y: y(tick) + 4, "text-anchor": "end", class: "tick" }, tickLabel(tick)),
    );
  }
  for (const tick of niceTicks(1, xMax, 6).filter((t) => t >= 1 && t <= xMax && Number.isInteger(t))) {
    svg.append(
      svgEl("text", { x: x(tick - 1), y: height - 14, "text-anchor": "middle", class: "tick" }, tick),
    );
  }
  svg.append(
    svgEl(
      "text",
      { x: margin.left + plotWidth, y: height - 2, "text-anchor": "end", class: "tick" },
      // Members of an ensemble train one after another; dashed lines mark where each starts.
      stages.length > 1 ? `epoch (${stages.length} members, one after another)` : "epoch",
    ),
    svgEl("line", { x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotHeight, class: "axis" }),
    svgEl("line", {
      x1: margin.left,
      x2: margin.left + plotWidth,
      y1: margin.top + plotHeight,
      y2: margin.top + plotHeight,
      class: "axis",
    }),
  );
  for (const stage of stages) {
    if (stage.index === 0) continue;
    const sx = x(stage.index - 0.5);
    svg.append(
      svgEl("line", { x1: sx, x2: sx, y1: margin.top, y2: margin.top + plotHeight, class: "stage" }),
    );
  }

  let legendX = width - margin.right;
  for (const s of [...series].reverse()) {
    const points = [];
    s.values.forEach((value, index) => {
      if (typeof value === "number" && Number.isFinite(value)) {
        points.push(`${x(index).toFixed(1)},${y(value).toFixed(1)}`);
      }
    });
    if (points.length === 0) continue;
    const line =
      points.length === 1
        ? svgEl("circle", { cx: points[0].split(",")[0], cy: points[0].split(",")[1], r: 3, class: `dot ${s.className}` })
        : svgEl("polyline", { points: points.join(" "), class: `line ${s.className}` });
    line.setAttribute("data-points", points.length);
    svg.append(line);
    const textStart = legendX - s.name.length * 6.5;
    svg.append(
      svgEl("line", { x1: textStart - 18, x2: textStart - 5, y1: 12, y2: 12, class: `line ${s.className}` }),
      svgEl("text", { x: legendX, y: 16, "text-anchor": "end", class: `legend ${s.className}` }, s.name),
    );
    legendX = textStart - 28;
  }

  const latest = series
    .map((s) => {
      const last = [...s.values].reverse().find((v) => typeof v === "number");
      return last === undefined ? null : `${s.name} ${tickLabel(last)}`;
    })
    .filter(Boolean);
  const span = stages.length > 1 ? `${stages.length} members, ${count} epochs in all` : `${count} epochs`;
  svg.setAttribute("aria-label", `${title} over ${span}; latest ${latest.join(", ")}`);
}
