// App screens of MimiVibe read with @supabase/supabase-js, the client a mobile or web app
// uses, against the local gateway. Reads its configuration as JSON on stdin
// ({url, anonKey, tokens: {name: jwt}, ids: {...}}) and prints one JSON object: for each screen
// its data, count, status and error, which the Python test compares with the same queries run
// in SQL as the same user.
import { createClient } from "@supabase/supabase-js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const config = JSON.parse(Buffer.concat(chunks).toString("utf8"));

// Node 20 has no global WebSocket, which the realtime client looks for when it is created;
// these screens never open a realtime channel, so any use of it is an error.
class NoRealtime {
  constructor() {
    throw new Error("realtime is not used by these screens");
  }
}

function clientFor(user) {
  return createClient(config.url, config.anonKey, {
    accessToken: async () => config.tokens[user],
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoRealtime },
  });
}

const alice = clientFor("alice");
const bob = clientFor("bob");
const ids = config.ids;

const screens = {
  wallet_history: () =>
    alice.from("wallet_transactions")
      .select("id, amount, currency, transaction_type, payments(status, amount, package_type)")
      .order("created_at", { ascending: false }),
  wallet_page_with_count: () =>
    alice.from("wallet_transactions").select("id, amount", { count: "exact" })
      .order("created_at").range(1, 2),
  readings_with_jobs: () =>
    alice.from("tarot_readings").select("id, question, card_count, jobs(status, completed_at)")
      .order("created_at"),
  jobs_with_their_reading: () =>
    alice.from("jobs").select("id, status, tarot_readings(question)").order("created_at"),
  invites_sent_with_invitee_profiles: () =>
    alice.from("user_invites").select("status, coin_reward, invitee:users!invitee_id(name)")
      .order("created_at"),
  invite_received: () =>
    bob.from("user_invites")
      .select("status, inviter:users!inviter_id(name), invitee:users!invitee_id(name)"),
  ambiguous_invite_embed: () => alice.from("user_invites").select("status, users(name)"),
  profile_with_history: () =>
    alice.from("users").select("name, tier, tarot_readings(question, card_count), payments(status)")
      .order("created_at", { referencedTable: "tarot_readings" })
      .order("created_at", { referencedTable: "payments" })
      .single(),
  paid_purchases_only: () =>
    alice.from("wallet_transactions").select("id, amount, payments!inner(status)")
      .eq("payments.status", "succeeded").order("created_at"),
  search_then_filter: () =>
    alice.rpc("search_readings", { query: "ความรัก" }).select("id, question, card_count")
      .eq("card_count", 5),
  search_count_only: () =>
    alice.rpc("search_readings", { query: "ความรัก" }, { count: "exact", head: true }),
  export_wallet_csv: () =>
    alice.from("wallet_transactions").select("transaction_type, amount, currency")
      .order("created_at").csv(),
  readings_with_job_status_spread: () =>
    alice.from("tarot_readings").select("id, ...jobs(job_status:status)").order("created_at"),
  ledger_rows_without_payment: () =>
    alice.from("wallet_transactions").select("id, transaction_type, payments(id)")
      .is("payments", null).order("created_at"),
  latest_reading: () =>
    alice.from("users").select("name, tarot_readings(question)")
      .order("created_at", { referencedTable: "tarot_readings", ascending: false })
      .limit(1, { referencedTable: "tarot_readings" }),
  wallet_summary: () => alice.rpc("wallet_summary"),
  edit_profile_picture: () =>
    alice.from("users").update({ picture_url: "https://example.com/alice.png" })
      .eq("id", ids.alice).select("picture_url, tarot_readings(card_count)")
      .order("created_at", { referencedTable: "tarot_readings" }).single(),
  payment_with_ledger: () =>
    alice.from("payments").select("id, status, wallet_transactions(amount, transaction_type)")
      .eq("id", ids.payment).maybeSingle(),
};

const results = {};
for (const [name, screen] of Object.entries(screens)) {
  const { data, error, count, status } = await screen();
  results[name] = { data: data ?? null, error: error ?? null, count: count ?? null, status };
}
process.stdout.write(JSON.stringify(results));
