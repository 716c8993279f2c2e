// The dashboard's only script: refresh the overview's parts in place, ask before the kill
// switch, copy the alert template and the API key, show the key on request, hide form
// fields that do not apply, and open on a wide screen what a phone keeps folded. No
// framework, no build step.
"use strict";

(function () {
  const token = document.querySelector('meta[name="csrf-token"]');

  function refresh(live) {
    const url = live.dataset.liveUrl;
    fetch(url, {headers: {"Accept": "application/json", "X-CSRF-Token": token ? token.content : ""},
                credentials: "same-origin"})
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (parts) {
        if (!parts) { return; }
        for (const name of Object.keys(parts)) {
          const target = document.getElementById("live-" + name);
          if (target && target.innerHTML !== parts[name]) { target.innerHTML = parts[name]; }
        }
        live.dataset.updated = String(Date.now());
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  function startPolling() {
    const live = document.getElementById("live");
    if (!live) { return; }
    const every = Math.max(Number(live.dataset.pollSeconds) || 3, 1) * 1000;
    window.setInterval(function () {
      if (document.visibilityState === "visible") { refresh(live); }
    }, every);
  }

  // Forms inside refreshed parts are replaced, so listen on the document. Only the kill
  // switch asks here; the square-off's form is its own one confirmation.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.dataset ? form.dataset.confirm : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Show or hide a masked value: the element carries both spellings.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-reveal]");
    if (!button) { return; }
    const target = document.getElementById(button.dataset.reveal);
    const showing = target.textContent === target.dataset.secret;
    target.textContent = showing ? target.dataset.masked : target.dataset.secret;
    button.textContent = showing ? "Show" : "Hide";
  });

  // Fields that matter only for some choices of a select ("expiry=date") hide otherwise;
  // without the script every field shows, and the server ignores the ones not needed.
  function showWhen(form) {
    for (const field of form.querySelectorAll("[data-when]")) {
      const parts = field.dataset.when.split("=");
      const select = form.elements[parts[0]];
      field.hidden = Boolean(select) && !parts[1].split(",").includes(select.value);
    }
  }
  document.addEventListener("change", function (event) {
    if (event.target.form) { showWhen(event.target.form); }
  });
  for (const form of document.querySelectorAll("form")) {
    if (form.querySelector("[data-when]")) { showWhen(form); }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) { return; }
    const source = document.getElementById(button.dataset.copy);
    // A masked value is copied whole, whether it is shown or not.
    const text = source.dataset.secret || source.textContent;
    const done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  });

  // Long lists folded to keep a phone's page short stand open on a wide screen.
  if (window.matchMedia("(min-width: 641px)").matches) {
    for (const fold of document.querySelectorAll("details[data-open-wide]")) { fold.open = true; }
  }

  startPolling();
})();
