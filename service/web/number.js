// The Number panel: a pad three digits wide (Pointer Events: mouse, pen and touch) or an
// uploaded picture, read by POST /number; each digit's box is drawn over the picture, with the
// digit read and its probability. Corrections of single digits go through the Digit panel,
// which keeps them as samples.

import { request } from "./api.js";
import { $, el, formatPercent, showError } from "./ui.js";

const STROKE_WIDTH = 20; // canvas pixels: the Digit pad's pen, for digits of the same height
const SVG = "http://www.w3.org/2000/svg";

export function initNumber() {
  const canvas = $("#number-canvas");
  const ctx = canvas.getContext("2d");
  const picture = $("#number-uploaded");
  const boxes = $("#number-boxes");
  const error = $("#number-error");
  const status = $("#number-status");

  let drawn = false;
  let pointer = null;
  let last = null;
  let requestSeq = 0;
  let pictureUrl = null;

  function clear() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
  }

  function showPicture(file) {
    if (pictureUrl) URL.revokeObjectURL(pictureUrl);
    pictureUrl = file ? URL.createObjectURL(file) : null;
    picture.hidden = !file;
    canvas.hidden = Boolean(file);
    if (file) {
      picture.src = pictureUrl;
      picture.alt = `Your picture, ${file.name}`;
    } else {
      picture.removeAttribute("src");
    }
  }

  function reset() {
    clear();
    requestSeq++;
    showPicture(null);
    boxes.replaceChildren();
    $("#number-answer").hidden = true;
    delete $("#number-answer").dataset.number;
    status.textContent = "";
    showError(error, null);
  }

  function canvasPoint(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) / box.width) * canvas.width,
      y: ((event.clientY - box.top) / box.height) * canvas.height,
    };
  }

  function stroke(to) {
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(to.x, to.y);
    ctx.lineWidth = STROKE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";
    ctx.stroke();
    last = to;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    if (!drawn) boxes.replaceChildren(); // a new number: the old boxes no longer fit
    pointer = event.pointerId;
    canvas.setPointerCapture(event.pointerId);
    last = canvasPoint(event);
    stroke(last);
    drawn = true;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== pointer) return;
    event.preventDefault();
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const move of moves.length ? moves : [event]) stroke(canvasPoint(move));
  });
  const endStroke = (event) => {
    if (event.pointerId === pointer) pointer = null;
  };
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  async function read(blob, filename, what, size) {
    const seq = ++requestSeq;
    const form = new FormData();
    form.append("file", blob, filename);
    status.textContent = `Reading ${what}…`;
    showError(error, null);
    boxes.replaceChildren();
    try {
      const answer = await request("POST", "/number", { body: form });
      if (seq !== requestSeq) return;
      show(answer, what, size);
    } catch (err) {
      if (seq !== requestSeq) return;
      $("#number-answer").hidden = true;
      showError(error, err);
      status.textContent = "";
    }
  }

  function show(answer, what, size) {
    const panel = $("#number-answer");
    panel.hidden = false;
    panel.dataset.number = answer.number;
    $("#number-value").textContent = answer.number;
    $("#number-probability").textContent = formatPercent(answer.probability);
    $("#number-model").textContent = `model ${answer.model} v${answer.model_version}`;
    $("#number-digits").replaceChildren(
      ...answer.digits.map((digit) =>
        el("li", {}, `${digit.digit} `, el("small", { class: "muted" }, formatPercent(digit.probability))),
      ),
    );
    // The boxes are in the picture's pixels: the overlay uses the same coordinates.
    boxes.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
    boxes.setAttribute("preserveAspectRatio", "xMidYMid meet");
    boxes.replaceChildren(
      ...answer.digits.flatMap((digit) => {
        const [x, y, width, height] = digit.box;
        const rect = document.createElementNS(SVG, "rect");
        for (const [name, value] of Object.entries({ x, y, width, height })) rect.setAttribute(name, value);
        const label = document.createElementNS(SVG, "text");
        label.setAttribute("x", x);
        label.setAttribute("y", Math.max(18, y - 4));
        label.textContent = String(digit.digit);
        return [rect, label];
      }),
    );
    status.textContent = `Read ${what} as ${answer.number}, ${formatPercent(answer.probability)} sure.`;
  }

  $("#number-read").addEventListener("click", () => {
    if (!drawn) {
      showError(error, "Write a number on the pad first, or upload a picture of one.");
      return;
    }
    showPicture(null);
    const size = { width: canvas.width, height: canvas.height };
    canvas.toBlob((blob) => read(blob, "number.png", "your number", size), "image/png");
  });
  $("#number-clear").addEventListener("click", reset);
  $("#number-upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      showError(error, `${file.name} is not an image; choose a PNG, JPEG, GIF, BMP, WebP or TIFF.`);
      return;
    }
    clear();
    showPicture(file);
    // The boxes come in the picture's own pixels (after its EXIF rotation, as the browser
    // shows it): its displayed size gives the overlay's coordinates.
    await picture.decode().catch(() => {});
    read(file, file.name, file.name, { width: picture.naturalWidth, height: picture.naturalHeight });
  });

  clear();
}
