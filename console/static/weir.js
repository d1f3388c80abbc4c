// Weir console: small progressive enhancements. Every page works without it.
"use strict";
document.addEventListener("submit", (ev) => {
  const f = ev.target;
  const msg = f.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) ev.preventDefault();
});

// Forms with data-confirm (modules, savepoints, keys, tenants): once the
// dialog above said yes, mark the form confirmed so the server does not ask
// again with its own page (what a browser without scripts gets).
document.addEventListener("submit", (ev) => {
  const f = ev.target;
  if (ev.defaultPrevented || !f.hasAttribute("data-confirm") || f.querySelector('input[name="confirm"]')) return;
  const yes = document.createElement("input");
  yes.type = "hidden";
  yes.name = "confirm";
  yes.value = "yes";
  f.appendChild(yes);
});

// Modules page: drag-and-drop upload onto the plain file input's zone; the
// name defaults to the file's name, as the server would make it.
(() => {
  const zone = document.querySelector("[data-dropzone]");
  if (!zone) return;
  const input = zone.querySelector('input[type="file"]');
  const status = zone.querySelector("[data-dropzone-status]");
  const name = document.getElementById("module-name");
  const show = () => {
    const f = input.files && input.files[0];
    if (!f) return;
    if (status) status.textContent = f.name + " (" + f.size + " bytes) is ready to upload.";
    if (name && !name.value) {
      name.value = f.name.toLowerCase().replace(/\.wasm$/, "").replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "").replace(/[-_.]+$/, "").slice(0, 63);
    }
  };
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (ev) => { ev.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files.length) {
      input.files = ev.dataTransfer.files;
      show();
    }
  });
  input.addEventListener("change", show);
})();

// Tenant and admin pages: a copy button for a new key's token (the button
// stays hidden without scripts; the token is selectable text anyway).
document.querySelectorAll("button[data-copy]").forEach((b) => {
  const src = document.getElementById(b.getAttribute("data-copy"));
  if (!src || !navigator.clipboard) return;
  b.hidden = false;
  b.addEventListener("click", () => {
    navigator.clipboard.writeText(src.textContent.trim()).then(() => { b.textContent = "Copied"; }, () => { b.textContent = "Copy failed: select and copy"; });
  });
});
