import { html, setHtml } from "./dom.js";

/**
 * Where the page keeps the API token between visits. Never in the URL: URLs end up in server
 * logs, proxies and browser history, and the node refuses any request that carries one.
 */
const STORAGE_KEY = "shoal.token";

const panel = () => document.getElementById("auth") as HTMLElement;
const forgetButton = () => document.getElementById("forget-token") as HTMLButtonElement;

let asking: Promise<string> | undefined;

export function storedToken(): string | undefined {
  return localStorage.getItem(STORAGE_KEY) ?? undefined;
}

/**
 * The node refused this token (bad, expired or revoked): sending it again cannot help. Only if
 * it is still the one kept: a refusal may arrive after a new token was entered.
 */
export function dropToken(token: string): void {
  if (storedToken() !== token) return;
  localStorage.removeItem(STORAGE_KEY);
  forgetButton().hidden = true;
}

/**
 * Asks for an API token with a small form and resolves with what was entered, kept in
 * localStorage. However many calls and sockets were refused at once, the form shows once and
 * they all wait on the same answer, so the operator types the token once.
 */
export function askToken(reason: string): Promise<string> {
  asking ??= new Promise((resolve) => {
    const root = panel();
    // `reason` is the node's error message: text, never markup.
    setHtml(
      root,
      html`<form id="token-form" class="token-form">
        <p id="token-reason">${reason}</p>
        <label>API token <input id="token-input" name="token" type="password" autocomplete="off" spellcheck="false" required /></label>
        <button id="token-connect" type="submit">connect</button>
        <p class="muted">Make one with <code>shoal token create --key-file FILE --scope read</code>. This browser keeps it (localStorage) until you forget it.</p>
      </form>`,
    );
    root.hidden = false;
    const form = root.querySelector("#token-form") as HTMLFormElement;
    const input = root.querySelector("#token-input") as HTMLInputElement;
    input.focus();
    // The page handles the submit itself: the form is never sent anywhere (CSP form-action 'none').
    form.onsubmit = (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      localStorage.setItem(STORAGE_KEY, token);
      setHtml(root, html``);
      root.hidden = true;
      forgetButton().hidden = false;
      asking = undefined;
      resolve(token);
    };
  });
  return asking;
}

/** Shows the "forget token" control while a token is kept; forgetting reloads the page without it. */
export function initTokenControls(): void {
  const button = forgetButton();
  button.hidden = storedToken() === undefined;
  button.onclick = () => {
    localStorage.removeItem(STORAGE_KEY);
    location.reload();
  };
}
