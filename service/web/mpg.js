// The Fuel economy panel: a form built from GET /mpg/features (labels, units, accepted and
// training ranges, real cars for the pick-list) and the answer of POST /mpg.

import { getJson, postJson } from "./api.js";
import { $, el, formatNumber, showError } from "./ui.js";

function titleCase(text) {
  return text.replace(/\b([a-z])/g, (letter) => letter.toUpperCase());
}

// The data set writes car names in lower case ("plymouth fury iii", "datsun 510 (sw)"). Plain
// title case mangles the abbreviations, so these stay upper case.
const UPPER_CASE_WORDS = new Set(["amc", "bmw", "vw", "gl", "glc", "gls", "gt", "gtl", "dl", "d/l", "lj", "se", "sx", "sw", "ltd", "ii", "iii", "iv"]);

/** "datsun 510 (sw)" → "Datsun 510 (SW)", "mazda rx2 coupe" → "Mazda RX2 Coupe". */
export function carName(name) {
  return name
    .split(" ")
    .map((word) => {
      const core = word.replace(/^\(|\)$/g, "");
      if (UPPER_CASE_WORDS.has(core)) return word.toUpperCase();
      // Model codes mixing letters and digits ("rx2", "280-zx") are upper case, except a
      // single trailing letter after a number ("320i"), as BMW writes it.
      if (/\d/.test(core)) return /^\d+[a-z]$/.test(core) ? word : word.toUpperCase();
      return titleCase(word);
    })
    .join(" ");
}

function originLabel(origin) {
  return origin.length <= 3 ? origin.toUpperCase() : titleCase(origin);
}

function fullYear(modelYear) {
  return modelYear < 100 ? 1900 + modelYear : modelYear;
}

function describeRanges(feature) {
  // Whole numbers such as years read without a thousands separator: 1976, not 1,976.
  const show = feature.integer ? String : formatNumber;
  return feature.accepted_ranges.map(([low, high]) => `${show(low)}–${show(high)}`).join(" or ");
}

/** The range the served version was trained on, as the API's warnings write it: "46–225 hp",
 * model years in full ("1970–1982"). */
export function trainingRange(feature) {
  const [low, high] = feature.training_range;
  if (feature.name === "model_year") return `${fullYear(low)}–${fullYear(high)}`;
  const unit = feature.unit ? ` ${feature.unit}` : "";
  return `${formatNumber(low)}–${formatNumber(high)}${unit}`;
}

/** Scrolls the answer's headline into view when it is not (on a phone the form fills the screen
 * and the answer appears below it), smoothly unless the person asked for less motion. */
function bringIntoView(answer) {
  const headline = answer.querySelector(".headline") ?? answer;
  const box = headline.getBoundingClientRect();
  if (box.top >= 0 && box.bottom <= window.innerHeight) return;
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  answer.scrollIntoView({ behavior: calm ? "auto" : "smooth", block: "start" });
}

export async function initMpg() {
  const form = $("#mpg-form");
  const fields = $("#mpg-fields");
  const pick = $("#mpg-example");
  const error = $("#mpg-error");
  let info;
  try {
    info = await getJson("/mpg/features");
  } catch (err) {
    showError(error, err, "The fuel-economy form cannot be built without /mpg/features.");
    return;
  }

  const inputs = new Map();
  for (const feature of info.features) {
    const id = `mpg-${feature.name}`;
    const hintId = `${id}-hint`;
    let input;
    if (feature.name === "origin") {
      input = el(
        "select",
        { id, name: feature.name, required: true, "aria-describedby": hintId },
        info.origins.map((origin) => el("option", { value: origin }, originLabel(origin))),
      );
    } else {
      // The limits are the API's own (accepted_ranges); a feature with several spellings
      // (model year 76 or 1976) gets the outer bounds here and the gaps checked in `validate`.
      const ranges = feature.accepted_ranges;
      input = el("input", {
        id,
        name: feature.name,
        type: "number",
        inputmode: feature.integer ? "numeric" : "decimal",
        min: Math.min(...ranges.map(([low]) => low)),
        max: Math.max(...ranges.map(([, high]) => high)),
        step: feature.integer ? 1 : "any",
        required: true,
        "aria-describedby": hintId,
      });
      input.addEventListener("input", () => validate(input, feature));
    }
    const hint = [];
    if (feature.name !== "origin") {
      hint.push(`accepted ${describeRanges(feature)}`);
      if (feature.training_range) hint.push(`trained on ${trainingRange(feature)}`);
    }
    const unit = feature.name === "origin" || feature.name === "model_year" ? "" : feature.unit;
    fields.append(
      el(
        "div",
        { class: "field" },
        el("label", { for: id }, feature.label, unit ? el("span", { class: "unit" }, ` (${unit})`) : null),
        input,
        el("small", { id: hintId, class: "hint" }, hint.join(" · ")),
      ),
    );
    inputs.set(feature.name, { input, feature });
  }

  pick.append(
    ...info.examples.map((car, index) =>
      el(
        "option",
        { value: index },
        `${carName(car.name)} (${fullYear(car.model_year)}, ${originLabel(String(car.origin))})`,
      ),
    ),
  );

  function validate(input, feature) {
    const value = Number(input.value);
    const inRange = feature.accepted_ranges.some(([low, high]) => low <= value && value <= high);
    input.setCustomValidity(
      input.value === "" || inRange ? "" : `Enter ${describeRanges(feature)}.`,
    );
  }

  function fill(car) {
    for (const [name, { input, feature }] of inputs) {
      if (car[name] === undefined) continue;
      input.value = car[name];
      if (name !== "origin") validate(input, feature);
    }
  }

  /** The picked car, and whether the form still describes it exactly. */
  function pickedCar() {
    if (pick.value === "") return { car: null, edited: false };
    const car = info.examples[Number(pick.value)];
    const form = readCar();
    const edited = [...inputs.keys()].some((name) =>
      name === "origin" ? String(car.origin) !== form.origin : Number(car[name]) !== form[name],
    );
    return { car, edited };
  }

  function readCar() {
    const car = {};
    for (const [name, { input, feature }] of inputs) {
      if (name === "origin") car[name] = input.value;
      else car[name] = feature.integer ? parseInt(input.value, 10) : parseFloat(input.value);
    }
    return car;
  }

  async function predict() {
    showError(error, null);
    if (!form.reportValidity()) return;
    const status = $("#mpg-status");
    status.textContent = "Predicting…";
    try {
      const answer = await postJson("/mpg", readCar());
      show(answer);
      bringIntoView($("#mpg-answer"));
    } catch (err) {
      showError(error, err);
    } finally {
      status.textContent = "";
    }
  }

  function show(answer) {
    const panel = $("#mpg-answer");
    panel.hidden = false;
    panel.classList.remove("stale");
    $("#mpg-stale").hidden = true;
    $("#mpg-value").textContent = answer.mpg.toFixed(1);
    $("#mpg-litres").textContent = answer.litres_per_100km.toFixed(1);
    $("#mpg-model").textContent = `model ${answer.model} v${answer.model_version}`;
    const { car, edited } = pickedCar();
    const recorded = $("#mpg-recorded");
    recorded.hidden = !(car && typeof car.mpg === "number");
    if (car) {
      recorded.textContent = edited
        ? `Edited from the ${carName(car.name)}, which recorded ${car.mpg} mpg in the data set.`
        : `Recorded in the data set: ${car.mpg} mpg.`;
    }
    const warnings = $("#mpg-warnings");
    warnings.replaceChildren(...answer.warnings.map((text) => el("li", {}, text)));
    $("#mpg-warnings-box").hidden = answer.warnings.length === 0;
    $("#mpg-summary").textContent =
      `Predicted ${answer.mpg.toFixed(1)} miles per gallon, ` +
      `${answer.litres_per_100km.toFixed(1)} litres per 100 km` +
      (answer.warnings.length ? `, with ${answer.warnings.length} warning(s).` : ".");
  }

  pick.addEventListener("change", () => {
    if (pick.value === "") return;
    fill(info.examples[Number(pick.value)]);
    predict();
  });
  // An answer describes the form as it was: once a field changes, say so until the next
  // prediction. The picked car stays selected: it is where the edited car started from.
  function markStale() {
    const panel = $("#mpg-answer");
    if (panel.hidden || panel.classList.contains("stale")) return;
    panel.classList.add("stale");
    $("#mpg-stale").hidden = false;
  }
  fields.addEventListener("input", markStale);
  fields.addEventListener("change", markStale);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });

  if (info.examples.length) {
    fill(info.examples[0]);
    pick.value = "0";
  }
}
