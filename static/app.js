// Progressive enhancements only: every page works without scripts.
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => { copy.textContent = "Copied"; });
    }
  }
});

// After a secret is shown once, a reload must not show it again: point the address bar at the
// app's own page (which never shows secrets) instead of the form submission.
const replaceUrl = document.querySelector("[data-replace-url]");
if (replaceUrl && window.history && window.history.replaceState) {
  window.history.replaceState(null, "", replaceUrl.getAttribute("data-replace-url"));
}
