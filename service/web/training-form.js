// The training form, built from the service's OpenAPI document: the models that POST /jobs
// takes, each one's hyperparameter schema (names, types, ranges, enum values, defaults) and the
// promotion policies. Nothing here repeats the vocabulary of training/hyperparameters.py.

import { $, el } from "./ui.js";

/** The common hyperparameters offered as fields, in order; others go in the JSON box. */
const FIELDS = [
  ["architecture", "Architecture"],
  ["epochs", "Epochs"],
  ["batch_size", "Batch size"],
  ["optimizer", "Optimizer"],
  ["learning_rate", "Learning rate"],
  ["lr_schedule", "Learning-rate schedule"],
  ["activation", "Activation"],
  ["kernel_initializer", "Kernel initializer"],
  ["dropout", "Dropout"],
  ["hidden_units", "Hidden layers (units)"],
  ["ensemble_size", "Ensemble size"],
  ["max_train_samples", "Training rows (first N)"],
  ["early_stopping_patience", "Early-stopping patience"],
  ["user_samples", "Use accepted samples"],
  ["start_from", "Start from"],
];

function refName(ref) {
  return ref.split("/").pop();
}

/** A property's schema with $ref, single allOf and nullable anyOf folded in. */
function resolve(spec, schemas) {
  let out = { ...spec };
  if (out.$ref) {
    out = { ...schemas[refName(out.$ref)], ...out };
    delete out.$ref;
  }
  if (out.allOf && out.allOf.length === 1) {
    out = { ...resolve(out.allOf[0], schemas), ...out };
    delete out.allOf;
  }
  if (out.anyOf) {
    const choices = out.anyOf.filter((choice) => choice.type !== "null");
    if (choices.length === 1) {
      out = { ...resolve(choices[0], schemas), ...out, nullable: true };
      delete out.anyOf;
    }
  }
  return out;
}

/** Reads the job vocabulary from /openapi.json: { models: {name: {schema, description}}, promote }. */
export function jobVocabulary(openapi) {
  const schemas = openapi.components?.schemas ?? {};
  const models = {};
  let promote = null;
  for (const schema of Object.values(schemas)) {
    const props = schema.properties ?? {};
    const name = props.model?.const;
    if (!name || !props.hyperparameters?.$ref) continue;
    const hp = schemas[refName(props.hyperparameters.$ref)];
    const properties = {};
    for (const [field, spec] of Object.entries(hp.properties ?? {})) {
      properties[field] = resolve(spec, schemas);
    }
    models[name] = { properties, description: hp.description ?? "" };
    if (props.promote) promote = resolve(props.promote, schemas);
  }
  if (!Object.keys(models).length) throw new Error("the service's OpenAPI document describes no training jobs");
  return { models, promote };
}

/** "1–100", "more than 0, at most 10", "at least 1", "less than 1". */
export function rangeText(spec) {
  const lowText =
    spec.exclusiveMinimum !== undefined ? `more than ${spec.exclusiveMinimum}`
    : spec.minimum !== undefined ? `at least ${spec.minimum}` : null;
  const highText =
    spec.exclusiveMaximum !== undefined ? `less than ${spec.exclusiveMaximum}`
    : spec.maximum !== undefined ? `at most ${spec.maximum}` : null;
  if (spec.minimum !== undefined && spec.maximum !== undefined) return `${spec.minimum}–${spec.maximum}`;
  return [lowText, highText].filter(Boolean).join(", ");
}

/** Renders the fields of `model` into `container`; returns a reader of the filled-in values. */
export function renderFields(container, vocabulary, model) {
  const { properties, description } = vocabulary.models[model];
  container.replaceChildren();
  const controls = [];

  function placeholderFor(name, spec) {
    // The digit schema's defaults are the CNN's; `x-mlp-default` holds the MLP's where they
    // differ, and `x-fine-tune-default` those of fine-tuning the served version.
    const architecture = $("#hp-architecture", container)?.value;
    const startFrom = $("#hp-start_from", container)?.value;
    const value =
      startFrom === "served" && "x-fine-tune-default" in spec ? spec["x-fine-tune-default"]
      : architecture === "mlp" && "x-mlp-default" in spec ? spec["x-mlp-default"]
      : spec.default;
    if (value === undefined || value === null) return spec.nullable ? "all" : "default";
    return `default ${Array.isArray(value) ? value.join(", ") : value}`;
  }

  for (const [name, label] of FIELDS) {
    const spec = properties[name];
    if (!spec) continue;
    const id = `hp-${name}`;
    const hintId = `${id}-hint`;
    let control;
    if (spec.enum) {
      control = el(
        "select",
        { id, name, "aria-describedby": hintId },
        el("option", { value: "" }, "default"),
        spec.enum.map((value) => el("option", { value }, value)),
      );
    } else if (spec.type === "array") {
      control = el("input", {
        id,
        name,
        type: "text",
        inputmode: "numeric",
        pattern: "\\s*\\d+(\\s*,\\s*\\d+)*\\s*",
        "aria-describedby": hintId,
      });
    } else {
      const integer = spec.type === "integer";
      control = el("input", {
        id,
        name,
        type: "number",
        inputmode: integer ? "numeric" : "decimal",
        min: spec.minimum,
        max: spec.maximum,
        step: integer ? 1 : "any",
        "aria-describedby": hintId,
      });
    }
    const hint = [spec.description, spec.type === "array" ? "comma-separated" : rangeText(spec)]
      .filter(Boolean)
      .join("; ");
    // A select as wide as its longest choice ("default glorot_uniform") takes two columns
    // rather than cutting the text off.
    const longest = spec.enum ? Math.max(...spec.enum.map((v) => String(v).length), String(spec.default ?? "").length + 8) : 0;
    container.append(
      el(
        "div",
        { class: longest > 16 ? "field wide-choice" : "field" },
        el("label", { for: id }, label),
        control,
        el("small", { id: hintId, class: "hint" }, hint),
      ),
    );
    controls.push({ name, spec, control });
  }

  function refreshDefaults() {
    for (const { name, spec, control } of controls) {
      const text = placeholderFor(name, spec);
      if (control.tagName === "SELECT") {
        control.options[0].textContent = text;
      } else {
        control.placeholder = text;
      }
    }
  }
  refreshDefaults();
  $("#hp-architecture", container)?.addEventListener("change", refreshDefaults);
  $("#hp-start_from", container)?.addEventListener("change", refreshDefaults);
  $("#training-model-help").textContent = description.replace(/`/g, "").replace(/\s+/g, " ");

  /** The hyperparameters the user set; fields left blank take the service's defaults. */
  return function read() {
    const values = {};
    for (const { name, spec, control } of controls) {
      const raw = control.value.trim();
      if (raw === "") continue;
      if (spec.type === "array") values[name] = raw.split(",").map((part) => parseInt(part, 10));
      else if (spec.enum) values[name] = raw;
      else values[name] = spec.type === "integer" ? parseInt(raw, 10) : parseFloat(raw);
    }
    return values;
  };
}
