// The official openai client against a running `flashfix serve` (tests/serve_test.cpp starts it and
// passes FLASHFIX_URL, FLASHFIX_API_KEY and FLASHFIX_MODEL). The model is random: these tests check
// the protocol (shapes, streaming, tool calls, usage, errors), never the words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = `${process.env.FLASHFIX_URL}/v1`;
const model = process.env.FLASHFIX_MODEL;
// No retries: a 4xx must surface as the client's error class at once.
const client = new OpenAI({ baseURL, apiKey: process.env.FLASHFIX_API_KEY, maxRetries: 0, timeout: 120_000 });

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      // Enums and a boolean: a random model's call has no free text to ramble in, so it closes early.
      properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Rome'] }, celsius: { type: 'boolean' } },
      required: ['city', 'celsius'],
    },
  },
};

test('models list names the served model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

test('plain chat completion', async () => {
  const r = await client.chat.completions.create({
    model, max_tokens: 8, temperature: 0, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streamed chat completion with usage', async () => {
  const stream = await client.chat.completions.create({
    model, max_tokens: 10, seed: 3, messages: [{ role: 'user', content: 'Stream something.' }],
    stream: true, stream_options: { include_usage: true },
  });
  let role, finish, usage, text = '', chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    role ??= c.delta.role;
    text += c.delta.content ?? '';
    finish ??= c.finish_reason ?? undefined;
  }
  assert.equal(role, 'assistant');
  assert.ok(chunks >= 3);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens <= 10);
  assert.equal(typeof text, 'string');
});

test('forced tool call, not streamed', async () => {
  const r = await client.chat.completions.create({
    model, max_tokens: 200, messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [weatherTool], tool_choice: 'required', parallel_tool_calls: false,
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.ok(c.message.tool_calls.length >= 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args, 'object');
  assert.ok(['Paris', 'Oslo', 'Rome'].includes(args.city));  // required and enumerated: the grammar demands it
  assert.equal(typeof args.celsius, 'boolean');
});

test('named tool call, streamed, assembled by the client library', async () => {
  const runner = client.beta.chat.completions.stream({
    model, max_tokens: 200, messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false,
  });
  let fragments = 0;
  runner.on('chunk', (chunk) => { if (chunk.choices[0]?.delta?.tool_calls) fragments++; });
  const final = await runner.finalChatCompletion();
  const c = final.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls[0].function.name, 'get_weather');
  assert.ok(c.message.tool_calls[0].id);
  assert.ok(['Paris', 'Oslo', 'Rome'].includes(JSON.parse(c.message.tool_calls[0].function.arguments).city));
  assert.ok(fragments >= 2, `tool call came in ${fragments} fragments`);
});

test('a tool result continues the conversation', async () => {
  const first = await client.chat.completions.create({
    model, max_tokens: 200, messages: [{ role: 'user', content: 'Weather in Rome?' }], tools: [weatherTool], tool_choice: 'required',
    parallel_tool_calls: false,
  });
  const msg = first.choices[0].message;
  const r = await client.chat.completions.create({
    model, max_tokens: 4, tools: [weatherTool], tool_choice: 'none',
    messages: [{ role: 'user', content: 'Weather in Rome?' }, msg,
      { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '{"temp": 21}' }],
  });
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.ok(r.usage.prompt_tokens > first.usage.prompt_tokens);
});

test('a second request sharing the prefix reports cached tokens', async () => {
  const messages = [{ role: 'system', content: 'You are a helpful assistant who answers questions about geography.' },
    { role: 'user', content: 'Name a river in Europe.' }];
  const a = await client.chat.completions.create({ model, max_tokens: 1, messages });
  const b = await client.chat.completions.create({
    model, max_tokens: 1, messages: [...messages, a.choices[0].message, { role: 'user', content: 'And one in Asia?' }],
  });
  assert.ok(b.usage.prompt_tokens > a.usage.prompt_tokens);
  assert.ok(b.usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(b.usage));
});

test('legacy completions', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.usage.prompt_tokens, 5);
});

test('errors surface as the client library error classes', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model, temperature: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'y '.repeat(3000) }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
  const stranger = new OpenAI({ baseURL, apiKey: 'not-the-key', maxRetries: 0 });
  await assert.rejects(stranger.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(client.chat.completions.create({ model, stream: true, messages: [{ role: 'wizard', content: 'x' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].role');
});
