// WebAuthn ceremonies for authgate's pages. No framework, no external assets.
// The server sends PublicKeyCredential*Options as JSON (base64url fields); we decode them,
// call the browser, and post the credential back as JSON with the CSRF token.
(function () {
  "use strict";
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf() {
    var el = document.querySelector("input[name=csrf_token]");
    return el ? el.value : (document.body.dataset.csrf || "");
  }
  function showError(text) {
    var box = document.getElementById("webauthn-error");
    if (box) { box.textContent = text; box.hidden = false; }
  }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: body || "{}" });
  }
  function credentialJson(cred) {
    var r = cred.response, out = { id: cred.id, rawId: bufToB64url(cred.rawId),
      type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
      authenticatorAttachment: cred.authenticatorAttachment || undefined, response: {
        clientDataJSON: bufToB64url(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bufToB64url(r.authenticatorData);
      out.response.signature = bufToB64url(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64url(r.userHandle);
    }
    return JSON.stringify(out);
  }
  async function ceremony(button, kind) {
    button.disabled = true;
    try {
      var res = await post(button.dataset.options);
      if (!res.ok) {  // a refusal names what to do (e.g. 429: wait, or use the password)
        var refusal = await res.json().catch(function () { return {}; });
        throw new Error(refusal.error || "The server refused to start: " + res.status);
      }
      var opts = await res.json(), cred;
      opts.challenge = b64urlToBuf(opts.challenge);
      if (kind === "create") {
        opts.user.id = b64urlToBuf(opts.user.id);
        (opts.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
        cred = await navigator.credentials.create({ publicKey: opts });
      } else {
        (opts.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
        cred = await navigator.credentials.get({ publicKey: opts });
      }
      var url = button.dataset.verify;
      var nameField = document.getElementById("key-name");
      if (nameField) url += (url.indexOf("?") < 0 ? "?" : "&") + "name=" + encodeURIComponent(nameField.value);
      var verdict = await post(url, credentialJson(cred));
      var body = await verdict.json();
      if (!verdict.ok || !body.ok) throw new Error(body.error || "Not accepted.");
      window.location.assign(body.redirect);
    } catch (err) {
      // The page may word the browser's refusal for its own next step (data-not-allowed).
      showError(err && err.name === "NotAllowedError"
        ? (button.dataset.notAllowed ||
           "The key did not confirm it's you. Touch it and enter its PIN or fingerprint " +
           "when asked, and use a key you registered. If it keeps failing, contact the IT " +
           "service desk.")
        : (err.message || "The security key did not work. Try again."));
      button.disabled = false;
    }
  }
  var login = document.getElementById("webauthn-login");
  if (login) login.addEventListener("click", function () { ceremony(login, "get"); });
  var passkey = document.getElementById("passkey-login");
  if (passkey) passkey.addEventListener("click", function () { ceremony(passkey, "get"); });
  var reg = document.getElementById("webauthn-register");
  if (reg) reg.addEventListener("click", function () { ceremony(reg, "create"); });
})();
