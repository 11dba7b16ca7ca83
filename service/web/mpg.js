// The Fuel economy panel: a form built from GET /mpg/features (labels, units, accepted and
// training ranges, real cars for the pick-list) and the answer of POST /mpg.

import { getJson, postJson } from "./api.js";
import { $, el, formatNumber, showError } from "./ui.js";

function titleCase(text) {
  return text.replace(/\b([a-z])/g, (letter) => letter.toUpperCase());
}

function originLabel(origin) {
  return origin.length <= 3 ? origin.toUpperCase() : titleCase(origin);
}

function fullYear(modelYear) {
  return modelYear < 100 ? 1900 + modelYear : modelYear;
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
      input = el("input", {
        id,
        name: feature.name,
        type: "number",
        inputmode: feature.integer ? "numeric" : "decimal",
        min: feature.minimum,
        max: feature.maximum,
        step: feature.integer ? 1 : "any",
        required: true,
        "aria-describedby": hintId,
      });
    }
    const hint = [];
    if (feature.name !== "origin") {
      hint.push(`accepted ${formatNumber(feature.minimum)}–${formatNumber(feature.maximum)}`);
      if (feature.training_range) {
        const [low, high] = feature.training_range;
        hint.push(`trained on ${formatNumber(low)}–${formatNumber(high)}`);
      }
    }
    const unit = feature.name === "origin" ? "" : feature.unit;
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
        `${titleCase(car.name)} (${fullYear(car.model_year)}, ${originLabel(String(car.origin))})`,
      ),
    ),
  );

  function fill(car) {
    for (const [name, { input }] of inputs) {
      if (car[name] !== undefined) input.value = car[name];
    }
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
    } catch (err) {
      showError(error, err);
    } finally {
      status.textContent = "";
    }
  }

  function show(answer) {
    $("#mpg-answer").hidden = false;
    $("#mpg-value").textContent = answer.mpg.toFixed(1);
    $("#mpg-litres").textContent = answer.litres_per_100km.toFixed(1);
    $("#mpg-model").textContent = `model ${answer.model} v${answer.model_version}`;
    const car = pick.value === "" ? null : info.examples[Number(pick.value)];
    const recorded = $("#mpg-recorded");
    recorded.hidden = !(car && typeof car.mpg === "number");
    if (car) recorded.textContent = `Recorded in the data set: ${car.mpg} mpg.`;
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
  // Once edited, the form no longer describes the picked car.
  fields.addEventListener("input", () => {
    pick.value = "";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    predict();
  });

  if (info.examples.length) {
    fill(info.examples[0]);
    pick.value = "0";
  }
}
