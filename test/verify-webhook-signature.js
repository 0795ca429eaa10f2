// The seed's verifyWebhookSignature (seed/webhooks-and-audit.md, webhook-handler.js), copied
// unchanged: Herald's signatures must satisfy it exactly as a receiver would run it.
const crypto = require("crypto");
function verifyWebhookSignature(body, signature, secret) {
const expected = crypto
.createHmac("sha256", secret)
.update(body, "utf8")
.digest("hex");
return crypto.timingSafeEqual(
Buffer.from(signature, "hex"),
Buffer.from(expected, "hex")
);
}

module.exports = { verifyWebhookSignature };
