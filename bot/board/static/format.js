// Times and labels shared by the list, the map popups and the case page.

const RANK = { critical: 0, high: 1, medium: 2, normal: 2, low: 3 };

export const priorityRank = (p) => RANK[p] ?? 9;

/** Sorted like `!incidents`: most urgent first, then the longest waiting. */
export function compareCases(a, b) {
  return (
    priorityRank(a.priority) - priorityRank(b.priority) ||
    (a.opened_at ?? 0) - (b.opened_at ?? 0) ||
    (a.last_contact_at ?? 0) - (b.last_contact_at ?? 0) ||
    String(a.code).localeCompare(String(b.code))
  );
}

/** 42 s, 7 min, 3 h 05, 2 d 4 h: short enough for a wall screen column. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${String(m % 60).padStart(2, "0")}`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export const nowS = () => Date.now() / 1000;

export function since(t) {
  return t ? duration(nowS() - t) : "–";
}

export function clock(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return d.toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export const label = (s) => String(s ?? "").replaceAll("_", " ");
