import {
  isPersonalKey,
  redactPersonalText,
  REMOVED,
  scrubPersonalData,
} from '../../src/domain/personal-data';

describe('scrubbing personal data from courier payloads', () => {
  it('removes names after "received by", "delivered to", "signed by", and e-mails and phone numbers', () => {
    expect(redactPersonalText('SHIPMENT DELIVERED - Received by: ASHA RAO (self)')).toBe(
      `SHIPMENT DELIVERED - Received by: ${REMOVED} (self)`,
    );
    expect(redactPersonalText('Delivered to Mr Kumar, ph +91 98000 00000')).toBe(
      `Delivered to ${REMOVED}, ph ${REMOVED}`,
    );
    expect(redactPersonalText('signed by j.tan; call 012-345 6789 or asha@example.com')).toBe(
      `signed by ${REMOVED}; call ${REMOVED} or ${REMOVED}`,
    );
  });

  it('leaves status texts, places, dates and times as they are', () => {
    for (const text of [
      'Departed sorting facility',
      'Recipient not available',
      'SHIPMENT ARRIVED AT HUB',
      'Out for delivery 2025-03-06 12:02:33',
      'Held at 07-06-2012 13:05 for collection',
    ]) {
      expect(redactPersonalText(text)).toBe(text);
    }
  });

  it('is idempotent: scrubbing twice is scrubbing once', () => {
    const once = redactPersonalText('Received by: ASHA (self), 9800000000');
    expect(redactPersonalText(once)).toBe(once);
  });

  it('recognises personal keys in every courier spelling', () => {
    for (const key of [
      'Consignee',
      'ConsigneeAddress1',
      'ConsigneeMobile',
      'ReceivedBy',
      'receiver_name',
      'recipientPhone',
      'email',
      'pod_photo',
      'latitude',
    ]) {
      expect([key, isPersonalKey(key)]).toEqual([key, true]);
    }
    for (const key of [
      'awb_number',
      'tracking_status',
      'location',
      'Destination',
      'ScanCode',
      'latest_event_date',
    ]) {
      expect([key, isPersonalKey(key)]).toEqual([key, false]);
    }
  });

  it('drops personal fields from a payload and redacts its free text, keeping identifiers and dates', () => {
    const payload = {
      '@WaybillNo': '69681234567',
      Consignee: 'Asha Rao',
      ConsigneeMobile: '9800000000',
      Destination: 'NEW DELHI',
      ReceivedBy: 'ASHA',
      Status: 'SHIPMENT DELIVERED',
      Scans: {
        ScanDetail: [
          { Scan: 'DELIVERED - received by: ASHA', ScanDate: '07-Jun-2012', ScanTime: '13:05' },
          { Scan: 'SHIPMENT PICKED UP', ScanCode: '015' },
        ],
      },
      receiver: { name: 'Asha', phone: '9800000000' },
      awb_number: 'EP1000000001',
      tracking_status: 'Delivered to Asha Rao, 012-3456789',
    };
    expect(scrubPersonalData(payload)).toEqual({
      '@WaybillNo': '69681234567',
      Destination: 'NEW DELHI',
      Status: 'SHIPMENT DELIVERED',
      Scans: {
        ScanDetail: [
          { Scan: `DELIVERED - received by: ${REMOVED}`, ScanDate: '07-Jun-2012', ScanTime: '13:05' },
          { Scan: 'SHIPMENT PICKED UP', ScanCode: '015' },
        ],
      },
      awb_number: 'EP1000000001',
      tracking_status: `Delivered to ${REMOVED}, ${REMOVED}`,
    });
  });
});
