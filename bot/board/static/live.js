// The live feed: one EventSource on /api/events (no polling). The server pings every 15 s, so
// silence for STALE_MS means the link is dead even if the socket looks open (a pulled cable).
// The banner says so at once, and says so again when the feed is back (after a catch-up fetch).

import { $ } from "./dom.js";

const STALE_MS = 40000;
const RETRY_MS = 3000;

export function connectLive({ onCase, onTeam, onBack }) {
  const banner = $("#live-banner");
  const dot = $("#live-state");
  let source = null;
  let lastHeard = Date.now();
  let lost = false;
  let everOpen = false;
  let hideTimer = 0;

  const show = (state, text) => {
    banner.textContent = text;
    banner.className = `banner ${state}`;
    banner.hidden = false;
    dot.textContent = state === "lost" ? "offline" : "live";
    dot.className = `live-state ${state}`;
    document.body.classList.toggle("is-offline", state === "lost");
  };

  const setLost = (why) => {
    if (lost) return;
    lost = true;
    clearTimeout(hideTimer);
    show("lost", `Live connection lost (${why}). Reconnecting… The list may be out of date.`);
  };

  const heard = () => {
    lastHeard = Date.now();
    if (lost) {
      lost = false;
      show("back", "Live connection is back. The list is up to date.");
      hideTimer = setTimeout(() => (banner.hidden = true), 8000);
      onBack();
    } else if (!everOpen) {
      dot.textContent = "live";
      dot.className = "live-state ok";
    }
    everOpen = true;
  };

  const open = () => {
    source = new EventSource("/api/events");
    source.addEventListener("open", heard);
    source.addEventListener("ping", heard);
    source.addEventListener("case", (e) => {
      heard();
      onCase(JSON.parse(e.data));
    });
    source.addEventListener("team", (e) => {
      heard();
      onTeam(JSON.parse(e.data));
    });
    source.addEventListener("error", () => {
      setLost("the gateway does not answer");
      // The browser retries by itself unless the server refused the stream (e.g. HTTP 401):
      // then it is CLOSED and we start again, and a dead session sends us to the login page.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(restart, RETRY_MS);
      }
    });
  };

  const restart = async () => {
    try {
      const r = await fetch("/api/me", { credentials: "same-origin" });
      if (r.status === 401 || (r.redirected && new URL(r.url).pathname === "/login")) {
        window.location.assign("/login?error=session_ended");
        return;
      }
    } catch {
      // still unreachable: try again below
    }
    open();
  };

  setInterval(() => {
    if (!lost && Date.now() - lastHeard > STALE_MS) {
      setLost("no news from the gateway for 40 s");
      source.close();
      restart();
    }
  }, 1000);
  open();
}
