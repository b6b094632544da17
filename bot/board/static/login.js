// Shows why the last login failed. The server sends a short code (?error=denied); anything
// unknown is shown as text, never as markup.
const WHY = {
  denied: "Wrong user ID, password or token.",
  not_staff: "This Matrix account is not a coordinator or responder of this gateway.",
  too_many: "Too many failed logins: wait 15 minutes and try again.",
  missing: "Give your user ID and password, or an access token.",
  session_ended: "Your session ended: log in again.",
  unavailable: "The homeserver cannot be reached to check your login: try again shortly.",
};
const code = new URLSearchParams(window.location.search).get("error");
if (code) {
  const box = document.getElementById("login-error");
  box.textContent = WHY[code] ?? code;
  box.hidden = false;
}
