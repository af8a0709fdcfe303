// The payouts list: the running total of the ticked rows (a file, not an inline script, for
// the Content-Security-Policy).
// Sums the selected rows' amounts in integer cents (data-cents), never parsing floats,
// one total per currency.
(function () {
  "use strict";
  function fmt(cents) {
    const neg = cents < 0n; if (neg) cents = -cents;
    const whole = cents / 100n, frac = (cents % 100n).toString().padStart(2, "0");
    // Grouped like every amount on the screens (config.money): 1,234.50.
    return (neg ? "-" : "") + whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + frac;
  }
  function update() {
    const totals = new Map(); let n = 0;
    document.querySelectorAll("#result_list tbody tr").forEach(function (tr) {
      const box = tr.querySelector("input.action-select");
      const amount = tr.querySelector(".payout-amount");
      if (!box || !box.checked || !amount) return;
      const cur = amount.dataset.currency;
      totals.set(cur, (totals.get(cur) || 0n) + BigInt(amount.dataset.cents));
      n += 1;
    });
    document.getElementById("selection-count").textContent = n;
    const parts = [];
    totals.forEach(function (cents, cur) { parts.push(fmt(cents) + " " + cur); });
    const sum = document.getElementById("selection-sum");
    sum.textContent = parts.length ? parts.join(" + ") : "0.00";
    sum.dataset.cents = Array.from(totals.values()).reduce(function (a, b) { return a + b; }, 0n).toString();
    const across = document.querySelector("input.select-across");
    document.getElementById("selection-across").hidden = !(across && across.value === "1");
  }
  const form = document.getElementById("changelist-form");
  if (!form) return;
  // Django's actions.js flips checkboxes in its own handlers; recount after they ran.
  ["change", "click"].forEach(function (ev) { form.addEventListener(ev, function () { setTimeout(update, 0); }); });
  update();
})();
