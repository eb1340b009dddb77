// adapterd through the official openai npm client and a Prometheus text-format parser.
// Usage: node client_test.mjs PORT ADAPTER_ID API_KEY
// Checks completions and chat, streamed and not, with the base model and with an adapter,
// /v1/models and /v1/models/{id}, the client's error for an unknown model, and that /metrics parses.
import assert from "node:assert/strict";
import OpenAI from "openai";
import parsePrometheusTextFormat from "parse-prometheus-text-format";

const [port, adapter, apiKey] = process.argv.slice(2);
const baseURL = `http://127.0.0.1:${port}/v1`;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push(`ok   ${name}`);
  } catch (e) {
    results.push(`FAIL ${name}: ${e.stack || e}`);
  }
}

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
const base = ids[0];

await check("models lists the base model and the adapter", async () => {
  assert.ok(ids.includes(adapter), `${adapter} in ${ids}`);
  assert.ok(ids.includes(`${base}:${adapter}`), ids.join(","));
  for (const m of models.data) assert.equal(m.object, "model");
});

await check("models.retrieve finds each listed model, and 404s an unknown one", async () => {
  for (const id of ids) {
    const m = await client.models.retrieve(id);
    assert.equal(m.id, id);
    assert.equal(m.object, "model");
  }
  await assert.rejects(client.models.retrieve("no-such-model"),
                       (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

for (const model of [base, adapter]) {
  await check(`completions (${model})`, async () => {
    const r = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices.length, 1);
    assert.equal(typeof r.choices[0].text, "string");
    assert.ok(["length", "stop"].includes(r.choices[0].finish_reason));
    assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  await check(`completions streamed (${model}) add up to the whole`, async () => {
    const whole = await client.completions.create({ model, prompt: "The sea", max_tokens: 12, temperature: 0 });
    const stream = await client.completions.create({ model, prompt: "The sea", max_tokens: 12, temperature: 0, stream: true });
    let text = "";
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, whole.choices[0].finish_reason);
  });

  await check(`chat (${model})`, async () => {
    const r = await client.chat.completions.create({
      model,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hello." }],
      max_tokens: 10,
      temperature: 0,
      seed: 7,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(r.usage.prompt_tokens > 0);
  });

  await check(`chat streamed (${model}) adds up, with usage`, async () => {
    const request = { model, messages: [{ role: "user", content: "Tell me about ships." }], max_tokens: 12, temperature: 0 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let role = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      if (chunk.choices.length) {
        role = chunk.choices[0].delta.role ?? role;
        text += chunk.choices[0].delta.content ?? "";
      }
      usage = chunk.usage ?? usage;
    }
    assert.equal(role, "assistant");
    assert.equal(text, whole.choices[0].message.content);
    // The same counts; the second run of the prompt reuses the first one's cached KV blocks.
    const { prompt_tokens_details: streamedDetails, ...streamedCounts } = usage;
    const { prompt_tokens_details: wholeDetails, ...wholeCounts } = whole.usage;
    assert.deepEqual(streamedCounts, wholeCounts);
    assert.ok(streamedDetails.cached_tokens >= wholeDetails.cached_tokens);
  });
}

await check("the adapter changes the greedy output", async () => {
  const ask = (model) => client.completions.create({ model, prompt: "A story", max_tokens: 12, temperature: 0 });
  const [a, b] = await Promise.all([ask(base), ask(adapter)]);
  assert.notEqual(a.choices[0].text, b.choices[0].text);
});

await check("n=4 gives four choices, each reproducible by its seed, usage counting the prompt once", async () => {
  const ask = () => client.chat.completions.create({
    model: adapter, messages: [{ role: "user", content: "Tell me four things" }],
    n: 4, max_tokens: 6, temperature: 1, seed: 11,
  });
  const [a, b] = [await ask(), await ask()];
  assert.equal(a.choices.length, 4);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.ok(new Set(a.choices.map((c) => c.message.content)).size > 1, "the choices differ");
  const single = await client.chat.completions.create({
    model: adapter, messages: [{ role: "user", content: "Tell me four things" }], max_tokens: 6,
    temperature: 1, seed: 11,
  });
  assert.equal(single.choices[0].message.content, a.choices[0].message.content);  // choice 0: seed 11
  assert.equal(a.usage.prompt_tokens, single.usage.prompt_tokens);
  assert.ok(a.usage.completion_tokens >= 4 && a.usage.completion_tokens <= 24, JSON.stringify(a.usage));
});

await check("an unknown model is the client's NotFoundError", async () => {
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 1 }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && /no-such-model/.test(e.message),
  );
});

await check("a wrong key is the client's AuthenticationError", async () => {
  const stranger = new OpenAI({ baseURL, apiKey: "wrong-key-123", maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

await check("/metrics parses as Prometheus text", async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const families = parsePrometheusTextFormat(text);
  const byName = Object.fromEntries(families.map((f) => [f.name, f]));
  for (const name of ["adapterd_http_requests_total", "adapterd_queue_depth", "adapterd_running_sequences",
                      "adapterd_batch_size", "adapterd_time_to_first_token_seconds",
                      "adapterd_inter_token_latency_seconds", "adapterd_prompt_tokens_total",
                      "adapterd_generated_tokens_total", "adapterd_process_resident_memory_bytes",
                      "adapterd_adapter_bytes", "adapterd_model_loads_total", "adapterd_evictions_total",
                      "adapterd_flushes_total"])
    assert.ok(byName[name], `${name} in /metrics`);
  assert.equal(byName.adapterd_time_to_first_token_seconds.type, "HISTOGRAM");
  const completions = byName.adapterd_http_requests_total.metrics.filter(
    (m) => m.labels.route === "/v1/completions" && m.labels.status === "200");
  assert.ok(completions.length === 1 && Number(completions[0].value) >= 6, JSON.stringify(completions));
  assert.ok(Number(byName.adapterd_generated_tokens_total.metrics[0].value) > 0);
});

console.log(results.join("\n"));
process.exit(results.some((r) => r.startsWith("FAIL")) ? 1 : 0);
