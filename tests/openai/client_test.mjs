// adapterd through the official openai npm client and a Prometheus text-format parser.
// Usage: node client_test.mjs PORT ADAPTER_ID API_KEY [TOOL_MODEL ...]
// Checks completions and chat, streamed and not, with the base model and with an adapter,
// /v1/models and /v1/models/{id}, the client's error for an unknown model, that /metrics
// parses, and tool calls on each TOOL_MODEL (a model whose chat template takes tools).
import assert from "node:assert/strict";
import OpenAI from "openai";
import parsePrometheusTextFormat from "parse-prometheus-text-format";

const [port, adapter, apiKey, ...toolModels] = process.argv.slice(2);
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

async function post(path, body) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

// Teacher-forced logprobs of `ids` after `prefix` (token ids), through completions' echo.
async function teacherForced(model, prefix, ids) {
  const r = await client.completions.create({
    model, prompt: [...prefix, ...ids], echo: true, logprobs: 0, max_tokens: 1, temperature: 0,
    return_tokens_as_token_ids: true,
  });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.token_logprobs[0], null);  // nothing comes before the first token
  assert.deepEqual(lp.tokens.slice(0, prefix.length + ids.length),
                   [...prefix, ...ids].map((id) => `token_id:${id}`));
  return lp.token_logprobs.slice(prefix.length, prefix.length + ids.length);
}

const near = (a, b) => Math.abs(a - b) < 2e-3;
const tokenIds = (names) => names.map((t) => Number(t.replace("token_id:", "")));

await check("completions logprobs at temperature 1 equal the teacher-forced ones, from /tokenize", async () => {
  const prompt = "The sea was calm and";
  const r = await client.completions.create({
    model: adapter, prompt, max_tokens: 8, temperature: 1, seed: 5, logprobs: 3, return_tokens_as_token_ids: true,
  });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, r.usage.completion_tokens);
  for (let i = 0; i < lp.tokens.length; ++i) {
    const top = Object.entries(lp.top_logprobs[i]);
    assert.equal(top.length, 3);
    assert.ok(top.every(([, v]) => v <= 0), JSON.stringify(top));
    if (lp.tokens[i] in lp.top_logprobs[i]) assert.ok(near(lp.top_logprobs[i][lp.tokens[i]], lp.token_logprobs[i]));
  }
  const { ids: prefix } = await post("/tokenize", { model: adapter, text: prompt });
  const forced = await teacherForced(adapter, prefix, tokenIds(lp.tokens));
  forced.forEach((v, i) => assert.ok(near(v, lp.token_logprobs[i]), `token ${i}: ${v} vs ${lp.token_logprobs[i]}`));
  // The same in text: tokens spell the text; text_offset counts from 0.
  const plain = await client.completions.create({ model: adapter, prompt, max_tokens: 8, temperature: 1, seed: 5, logprobs: 0 });
  const pieces = plain.choices[0].logprobs.tokens;
  if (!pieces.some((t) => t.includes("\uFFFD")))  // a token may hold half a character
    assert.equal(pieces.join(""), plain.choices[0].text);
  assert.equal(plain.choices[0].logprobs.text_offset[0], 0);
});

await check("chat logprobs and top_logprobs at temperature 1 equal the teacher-forced ones, streamed too", async () => {
  const messages = [{ role: "user", content: "Tell me about ships." }];
  const request = { model: adapter, messages, max_tokens: 8, temperature: 1, seed: 9, logprobs: true, top_logprobs: 2 };
  const r = await client.chat.completions.create({ ...request, return_tokens_as_token_ids: true });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.ok(Array.isArray(t.bytes));
  }
  const { ids: prefix } = await post("/tokenize", { model: adapter, messages });
  const forced = await teacherForced(adapter, prefix, tokenIds(content.map((t) => t.token)));
  forced.forEach((v, i) => assert.ok(near(v, content[i].logprob), `token ${i}: ${v} vs ${content[i].logprob}`));
  // Streamed: the chunks' logprobs add up to the whole answer's, and the tokens spell the text.
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true });
  const streamed = [];
  for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
  assert.deepEqual(streamed.map((t) => t.token), whole.choices[0].logprobs.content.map((t) => t.token));
  streamed.forEach((t, i) => assert.ok(near(t.logprob, whole.choices[0].logprobs.content[i].logprob)));
  const text = whole.choices[0].message.content;
  if (!text.includes("\uFFFD"))  // the tokens' exact bytes spell the text
    assert.equal(Buffer.from(whole.choices[0].logprobs.content.flatMap((t) => t.bytes)).toString("utf8"), text);
});

// A nested schema for structured outputs, and its validation by hand (the subset it uses).
const personSchema = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    height: { type: ["number", "null"] },
    pets: {
      type: "array", maxItems: 3,
      items: {
        type: "object",
        properties: { kind: { enum: ["cat", "dog"] }, legs: { type: "integer" } },
        required: ["kind", "legs"], additionalProperties: false,
      },
    },
  },
  required: ["name", "age", "height", "pets"],
  additionalProperties: false,
};
function validPerson(v) {
  const keys = (o) => Object.keys(o).join(",");
  return typeof v === "object" && v !== null && keys(v) === "name,age,height,pets"
    && typeof v.name === "string" && [...v.name].length <= 12 && Number.isInteger(v.age)
    && (v.height === null || typeof v.height === "number") && Array.isArray(v.pets) && v.pets.length <= 3
    && v.pets.every((p) => keys(p) === "kind,legs" && ["cat", "dog"].includes(p.kind) && Number.isInteger(p.legs));
}

await check("strict json_schema chat: 20 completions at temperature 1 (one streamed) all validate", async () => {
  const request = (seed) => ({
    model: adapter, messages: [{ role: "user", content: "Describe a person as JSON." }], max_tokens: 400,
    temperature: 1, seed,
    response_format: { type: "json_schema", json_schema: { name: "person", strict: true, schema: personSchema } },
  });
  const answers = await Promise.all([...Array(19).keys()].map((i) => client.chat.completions.create(request(100 + i))));
  const texts = answers.map((r) => r.choices[0].message.content);
  assert.ok(answers.every((r) => r.choices[0].finish_reason === "stop"), answers.map((r) => r.choices[0].finish_reason).join());
  let streamed = "";
  for await (const chunk of await client.chat.completions.create({ ...request(7), stream: true }))
    streamed += chunk.choices[0]?.delta?.content ?? "";
  texts.push(streamed);
  for (const t of texts) assert.ok(validPerson(JSON.parse(t)), t);
  assert.ok(new Set(texts).size > 15, "sampled, not one answer");
});

await check("json_object gives an object; a schema keyword outside the subset is a 400 naming it", async () => {
  const r = await client.completions.create({
    model: adapter, prompt: "JSON:", max_tokens: 300, temperature: 1, seed: 3, response_format: { type: "json_object" },
  });
  if (r.choices[0].finish_reason === "stop") {
    const v = JSON.parse(r.choices[0].text);
    assert.ok(typeof v === "object" && v !== null && !Array.isArray(v), r.choices[0].text);
  }
  await assert.rejects(
    client.chat.completions.create({
      model: adapter, messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } },
    }),
    (e) => e instanceof OpenAI.BadRequestError && /pattern/.test(e.message),
  );
});

await check("n=3 streamed: each choice's chunks add up to its text in the whole answer, usage once", async () => {
  const request = { model: adapter, prompt: "Three tales", n: 3, max_tokens: 6, temperature: 1, seed: 21 };
  const whole = await client.completions.create(request);
  const stream = await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  const texts = ["", "", ""];
  const finishes = [null, null, null];
  let usage = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.text ?? "";
      finishes[c.index] = c.finish_reason ?? finishes[c.index];
    }
    usage = chunk.usage ?? usage;
  }
  assert.deepEqual(texts, whole.choices.map((c) => c.text));
  assert.deepEqual(finishes, whole.choices.map((c) => c.finish_reason));
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
});

// Tool calls. A model of random weights never calls a tool of its own accord, so the calls
// here are forced (a named function, or "required"), which the grammar enforces; "auto"
// must still answer, with text or calls. Short strings: random weights seldom close one.
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather now in a city.",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 8 }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const timeTool = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {}, additionalProperties: false } } };
const toolChat = [{ role: "user", content: "Weather in Oslo?" }];

function checkCall(call, names) {
  assert.equal(call.type, "function");
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$|^[A-Za-z0-9]{9}$/);  // Mistral's templates demand 9
  assert.ok(names.includes(call.function.name), call.function.name);
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === "get_weather") {
    assert.deepEqual(Object.keys(args), ["city", "unit"]);
    assert.equal(typeof args.city, "string");
    assert.ok([...args.city].length <= 8);
    assert.ok(["celsius", "fahrenheit"].includes(args.unit));
  } else {
    assert.deepEqual(args, {});
  }
}

// The first of a few seeds whose answer is whole (random weights may pad JSON to the limit).
async function wholeAnswer(params) {
  for (let seed = 1; seed <= 6; seed++) {
    const r = await client.chat.completions.create({ ...params, seed, temperature: 1, max_tokens: 200 });
    if (r.choices[0].finish_reason !== "length") return { r, seed };
  }
  throw new Error("no seed gave a whole answer");
}

for (const model of toolModels) {
  const name = model.split("/").pop();
  await check(`a named tool call (${name})`, async () => {
    const { r } = await wholeAnswer({ model, messages: toolChat, tools: [weatherTool, timeTool],
                                      tool_choice: { type: "function", function: { name: "get_weather" } } });
    const msg = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, "tool_calls");
    assert.equal(msg.content, null);
    assert.equal(msg.tool_calls.length, 1);
    assert.equal(msg.tool_calls[0].function.name, "get_weather");
    checkCall(msg.tool_calls[0], ["get_weather"]);
  });

  await check(`required tool calls streamed equal the whole answer (${name})`, async () => {
    const params = { model, messages: toolChat, tools: [weatherTool, timeTool], tool_choice: "required" };
    const { r: whole, seed } = await wholeAnswer(params);
    const calls = whole.choices[0].message.tool_calls;
    assert.ok(calls.length >= 1);
    for (const call of calls) checkCall(call, ["get_weather", "get_time"]);
    // The client's own stream helper puts the deltas back together.
    const stream = client.chat.completions.stream({ ...params, seed, temperature: 1, max_tokens: 200 });
    const done = [];
    stream.on("tool_calls.function.arguments.done", (e) => done.push(e.name));
    const streamed = await stream.finalChatCompletion();
    const got = streamed.choices[0].message.tool_calls;
    assert.equal(streamed.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(got.map((c) => [c.function.name, c.function.arguments]),
                     calls.map((c) => [c.function.name, c.function.arguments]));
    assert.deepEqual(done, calls.map((c) => c.function.name));
    for (const call of got) checkCall(call, ["get_weather", "get_time"]);
  });

  await check(`a conversation with a tool result goes on (${name})`, async () => {
    const { r } = await wholeAnswer({ model, messages: toolChat, tools: [weatherTool],
                                      tool_choice: { type: "function", function: { name: "get_weather" } } });
    const call = r.choices[0].message.tool_calls[0];
    const messages = [...toolChat, r.choices[0].message, { role: "tool", tool_call_id: call.id, content: "-3C/snowing" }];
    const next = await client.chat.completions.create({ model, messages, tools: [weatherTool], max_tokens: 8, temperature: 0 });
    const m = next.choices[0].message;
    assert.ok(typeof m.content === "string" || m.tool_calls.length > 0);
    // The call and its result are in the prompt the template rendered.
    const tok = async (body) => (await (await fetch(`http://127.0.0.1:${port}/tokenize`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ model, ...body }) })).json());
    const withResult = await tok({ messages, tools: [weatherTool] });
    const before = await tok({ messages: toolChat, tools: [weatherTool] });
    assert.ok(withResult.pieces.join("").includes("snowing"));
    assert.ok(withResult.count > before.count + 10);
    assert.equal(next.usage.prompt_tokens, withResult.count);
  });
}

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
