// Talks to /ws/counter: the server sends the counter's value, "increment" raises it.
const output = document.getElementById("counter");
const button = document.getElementById("increment");
const status = document.getElementById("status");
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${scheme}://${location.host}/ws/counter`);

socket.addEventListener("open", () => {
  status.textContent = "connected";
  button.disabled = false;
});
socket.addEventListener("message", (event) => {
  output.textContent = event.data;
});
socket.addEventListener("close", (event) => {
  status.textContent = `disconnected${event.reason ? ": " + event.reason : ""}`;
  button.disabled = true;
});
button.addEventListener("click", () => socket.send("increment"));
