// The Samples panel (admin): the digits people sent back, as 28x28 thumbnails to accept, reject,
// relabel or delete, one at a time or selected together, from the keyboard too; counts per label
// and the .npz export of accepted samples.

import { getBlob, getJson, request } from "./api.js";
import { $, el, events, showError } from "./ui.js";

const PAGE = 60;
const STATUSES = ["new", "accepted", "rejected"];
const STATUS_WORDS = { new: "new: to review", accepted: "accepted", rejected: "rejected" };

export function initSamples() {
  const grid = $("#samples-grid");
  const error = $("#samples-error");
  const status = $("#samples-status-text");
  let offset = 0;
  let total = 0;
  let loaded = false;
  const thumbnails = []; // object URLs to revoke on the next page

  for (let digit = 0; digit <= 9; digit++) {
    $("#samples-label").append(el("option", { value: digit }, String(digit)));
    $("#samples-counts-head").append(el("th", { scope: "col", class: "num" }, String(digit)));
  }

  function query() {
    const params = new URLSearchParams({ limit: PAGE, offset });
    if ($("#samples-status").value) params.set("status", $("#samples-status").value);
    if ($("#samples-label").value) params.set("label", $("#samples-label").value);
    return `/samples?${params}`;
  }

  /** `askToken`: false when the panel is merely shown (no dialog for looking at a tab). */
  async function load({ askToken = true } = {}) {
    showError(error, null);
    status.textContent = "Loading…";
    try {
      const [page, counts] = await Promise.all([
        getJson(query(), { askToken }),
        getJson("/samples/counts", { askToken }),
      ]);
      total = page.total;
      showCounts(counts);
      await showPage(page);
      loaded = true;
      status.textContent = "";
    } catch (err) {
      status.textContent = "";
      showError(error, err, err.needsToken && !askToken ? "Press Refresh to enter it." : "");
    }
  }

  function showCounts(counts) {
    $("#samples-counts").replaceChildren(
      ...STATUSES.map((name) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, name),
          ...Array.from({ length: 10 }, (_, digit) =>
            el("td", { class: "num" }, String(counts[name]?.[digit] ?? 0)),
          ),
        ),
      ),
    );
  }

  async function showPage(page) {
    for (const url of thumbnails.splice(0)) URL.revokeObjectURL(url);
    const tiles = await Promise.all(page.items.map(tile));
    grid.replaceChildren(...tiles);
    $("#samples-empty").hidden = tiles.length > 0;
    const last = Math.min(offset + page.items.length, total);
    $("#samples-total").textContent = total ? `${offset + 1}–${last} of ${total}` : "";
    $("#samples-previous").disabled = offset === 0;
    $("#samples-next").disabled = last >= total;
  }

  async function tile(sample) {
    const url = URL.createObjectURL(await getBlob(sample.image_url));
    thumbnails.push(url);
    const predicted = sample.predicted === null ? "" : `, read as ${sample.predicted}`;
    const relabel = el(
      "select",
      { "aria-label": "Label", onchange: () => update([sample.id], { label: Number(relabel.value) }) },
      Array.from({ length: 10 }, (_, digit) =>
        el("option", { value: digit, selected: digit === sample.label }, String(digit)),
      ),
    );
    const item = el(
      "li",
      {
        class: `sample ${sample.status}`,
        tabindex: 0,
        "data-id": sample.id,
        "data-label": sample.label,
        "data-status": sample.status,
        "aria-label": `${sample.label}${predicted}, ${sample.status}`,
        onkeydown: (event) => onKey(event, sample, item),
      },
      el(
        "span",
        { class: "top" },
        el("input", { type: "checkbox", class: "select", "aria-label": "Select" }),
        el("span", { class: "label" }, `${sample.label}`),
        el("small", { class: "muted" }, sample.predicted === null ? "" : `read ${sample.predicted}`),
      ),
      el("span", { class: `badge sample-status ${sample.status}` }, STATUS_WORDS[sample.status] ?? sample.status),
      el("img", { src: url, width: 84, height: 84, alt: `Sample labelled ${sample.label}, as the model saw it` }),
      relabel,
      sample.original_url
        ? el(
            "button",
            { type: "button", class: "small link", onclick: () => showOriginal(sample) },
            "Original upload",
          )
        : null,
      el(
        "span",
        { class: "actions" },
        el("button", { type: "button", class: "small", onclick: () => update([sample.id], { status: "accepted" }) }, "Accept"),
        el("button", { type: "button", class: "small", onclick: () => update([sample.id], { status: "rejected" }) }, "Reject"),
        el("button", { type: "button", class: "small danger", onclick: () => remove([sample.id]) }, "Delete"),
      ),
    );
    return item;
  }

  /** The picture as it was sent (admin only), in a dialog: what the 28x28 was made from. */
  async function showOriginal(sample) {
    showError(error, null);
    let blob;
    try {
      blob = await getBlob(sample.original_url);
    } catch (err) {
      showError(error, err);
      return;
    }
    const dialog = $("#sample-original-dialog");
    const url = URL.createObjectURL(blob);
    const image = $("#sample-original-image");
    const note = $("#sample-original-note");
    note.textContent = "";
    image.hidden = false;
    image.onerror = () => {
      image.hidden = true;
      note.textContent = `This browser cannot show a ${blob.type || "picture of this kind"}: download it instead.`;
    };
    image.src = url;
    image.alt = `The picture sent for sample ${sample.label}${sample.predicted === null ? "" : `, read as ${sample.predicted}`}`;
    $("#sample-original-title").textContent = `Original upload · labelled ${sample.label} · ${sample.source}`;
    const download = $("#sample-original-download");
    download.href = url;
    download.download = `sample-${sample.id}`;
    dialog.addEventListener("close", () => URL.revokeObjectURL(url), { once: true });
    dialog.showModal();
  }

  function onKey(event, sample, item) {
    if (event.target !== item) return; // keys typed into the tile's own controls are theirs
    const key = event.key.toLowerCase();
    const tiles = [...grid.children];
    const index = tiles.indexOf(item);
    const move = { arrowright: 1, arrowdown: 1, arrowleft: -1, arrowup: -1 }[key];
    if (move) tiles[index + move]?.focus();
    else if (key === "a") update([sample.id], { status: "accepted" });
    else if (key === "r") update([sample.id], { status: "rejected" });
    else if (/^[0-9]$/.test(key)) update([sample.id], { label: Number(key) });
    else if (key === "delete" || key === "backspace") remove([sample.id]);
    else if (key === " ") {
      const box = item.querySelector(".select");
      box.checked = !box.checked;
    } else return;
    event.preventDefault();
  }

  function selected() {
    return [...grid.querySelectorAll(".select:checked")].map((box) => box.closest("li").dataset.id);
  }

  async function update(ids, change) {
    if (!ids.length) return;
    showError(error, null);
    try {
      for (const id of ids) await request("PATCH", `/samples/${id}`, { json: change });
      status.textContent = `${ids.length} sample${ids.length > 1 ? "s" : ""} updated.`;
      await load();
    } catch (err) {
      showError(error, err);
    }
  }

  async function remove(ids) {
    showError(error, null);
    try {
      for (const id of ids) await request("DELETE", `/samples/${id}`);
      status.textContent = `${ids.length} sample${ids.length > 1 ? "s" : ""} deleted.`;
      await load();
    } catch (err) {
      showError(error, err);
    }
  }

  async function exportAccepted() {
    showError(error, null);
    try {
      const url = URL.createObjectURL(await getBlob("/samples/export"));
      el("a", { href: url, download: "perceptron-samples.npz" }).click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      showError(error, err);
    }
  }

  for (const id of ["#samples-status", "#samples-label"]) {
    $(id).addEventListener("change", () => {
      offset = 0;
      load();
    });
  }
  $("#samples-refresh").addEventListener("click", () => load());
  $("#samples-export").addEventListener("click", exportAccepted);
  $("#samples-select-all").addEventListener("click", () => {
    for (const box of grid.querySelectorAll(".select")) box.checked = true;
  });
  $("#samples-accept").addEventListener("click", () => update(selected(), { status: "accepted" }));
  $("#samples-reject").addEventListener("click", () => update(selected(), { status: "rejected" }));
  $("#samples-previous").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    load();
  });
  $("#samples-next").addEventListener("click", () => {
    offset += PAGE;
    load();
  });
  // Admin data: loaded when the panel is first shown (it may ask for the token), then kept fresh.
  events.addEventListener("panel-shown", (event) => {
    if (event.detail === "samples") load({ askToken: false });
  });
  events.addEventListener("sample-added", () => {
    if (loaded) load();
  });
}
