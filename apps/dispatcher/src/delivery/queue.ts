/** Channel the senders LISTEN on; the intake and manual retries notify it when deliveries fall due now. */
export const DELIVERIES_CHANNEL = 'herald_deliveries';

/** A delivery leased to one sender, with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  body: string;
  attempt_count: number;
  run_base: number;
  url: string;
  secret_ciphertext: string;
  usable: boolean;
}
