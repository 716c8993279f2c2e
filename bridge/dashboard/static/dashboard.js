// The dashboard's only script: refresh the overview's parts in place, ask before
// dangerous buttons, and copy the alert template. No framework, no build step.
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

  // Forms inside refreshed parts are replaced, so listen on the document.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.dataset ? form.dataset.confirm : null;
    const dry = form.querySelector('input[name="dry_run"]');
    if (question && !(dry && dry.checked) && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) { return; }
    const text = document.getElementById(button.dataset.copy).textContent;
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

  startPolling();
})();
