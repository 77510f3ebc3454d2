/**
 * Card numbers (PANs) never enter Waybill: orders carry the payment provider's token only.
 * Pure rules, shared by the API (which refuses them) and the payment simulator (which plays
 * a provider that does take test card numbers in its own API).
 */

/** The Luhn check digit rule every real card number satisfies. */
export function passesLuhn(number: string): boolean {
  if (!/^\d+$/.test(number)) return false;
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let digit = Number(number[number.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** 13 to 19 digits passing Luhn, as written on a card or typed: with or without spaces and dashes. */
export function looksLikeCardNumber(text: string): boolean {
  const digits = text.trim().replace(/[\s-]/g, '');
  return /^\d{13,19}$/.test(digits) && passesLuhn(digits);
}
