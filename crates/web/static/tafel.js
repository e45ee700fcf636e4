// Tafel's one script: progressive enhancement only; every page works without it.
// - A shortlist marked data-live follows its changes (server-sent events, each the
//   shortlist's markup rendered by Tafel); the region is aria-live, so a change is read out.
// - An error summary takes focus, so keyboard and screen-reader users land on it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }
  if (!window.EventSource) {
    return;
  }
  document.querySelectorAll("[data-live]").forEach(function (region) {
    var source = new EventSource(region.getAttribute("data-live"));
    source.addEventListener("shortlist", function (event) {
      region.innerHTML = event.data;
      region.setAttribute("data-updated", event.lastEventId);
    });
  });
});
