/** The shopper the stack-backed tests order for: one address, so every test ships to the same place. */
export const ADDRESS = {
  name: 'Aisyah Rahman',
  line1: '12 Jalan Bukit',
  city: 'Shah Alam',
  state: 'Selangor',
  postcode: '40000',
  country: 'MY',
  phone: '+60123456789',
};
