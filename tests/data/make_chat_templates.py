"""Writes chat_templates.json: the chat templates of the model families adapterd supports,
as their tokenizer_config.json files publish them, with the prompts Jinja2 renders for
them the way transformers' apply_chat_template does (trim_blocks, lstrip_blocks, loop
controls). The C++ renderer must produce the same text. Run with a Python that has jinja2:
    python3 tests/data/make_chat_templates.py > tests/data/chat_templates.json
"""
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = {
    "llama-2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "llama-3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    "mistral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    "qwen2": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    "phi-3": json.load(open("../shared/fixtures/tokenizers/phi-3/tokenizer_config.json"))["chat_template"],
    # Constructs newer templates use: namespace, slicing, is-tests, filters, loop controls.
    "constructs": "{%- set ns = namespace(system='', seen=0) -%}\n{%- for m in messages -%}\n  {%- if m.role == 'system' -%}{%- set ns.system = m.content -%}{%- continue -%}{%- endif -%}\n  {%- set ns.seen = ns.seen + 1 -%}\n  [{{ loop.index }}/{{ loop.length }}|{{ m['role'] | upper }}|{{ m.content | length }}|{{ m.content[:3] }}|{{ m.content[-2:] }}]\n  {%- if m.content is string and m.missing is not defined %}ok{% endif %}\n  {%- if loop.last %}!{% endif %}\n{% endfor -%}\nsystem={{ ns.system if ns.system else 'none' }} seen={{ ns.seen }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -1 % 3 }} {{ 1 ~ 2 }} {{ [1, 2, 3] | join('-') }} {{ {'a': 1}.get('b', 'dflt') }} {{ 'x' in 'xyz' }} {{ range(3) | list | length }} {{ 'A,B'.split(',') | first }}\n{%- for x in [1, 2, 3, 4] if x is even %}{{ x }}{% if x == 2 %}{% break %}{% endif %}{% endfor %}\n{%+ if true %}  kept{% endif %}\n",
}
# Templates that take tools (transformers' apply_chat_template(tools=...)), as published.
HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_TEMPLATES = ["llama-3.1", "qwen2.5", "mistral-v0.3"]
for name in TOOL_TEMPLATES:
    with open(os.path.join(HERE, "templates", name + ".jinja"), encoding="utf-8") as f:
        TEMPLATES[name] = f.read()

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello there!"}],
    "system+user": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " What is 2+2? "}],
    "multi-turn": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke.\nA short one."}],
    "system+multi-turn": [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Arr!"}, {"role": "user", "content": "Where is the gold?"}],
    "not-alternating": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city's name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Local time, ISO 8601: \u00e9t\u00e9",
                                          "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, TIME]
# Conversations rendered with TOOLS; an assistant's call has arguments as a dict, as vLLM
# hands them to templates (OpenAI's JSON string, parsed).
TOOL_CONVERSATIONS = {
    "tools+user": [{"role": "user", "content": "What is the weather in Paris?"}],
    "tools+system+call+result": [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "Weather in Oslo, in celsius?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 C, snow"},
        {"role": "assistant", "content": "It is -3 C and snowing in Oslo."},
        {"role": "user", "content": "And the time?"}],
    "tools+call+result+answer": [
        {"role": "user", "content": "Time in Bern?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a1b2c3d4e", "type": "function", "function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "content": "09:30"},
        {"role": "assistant", "content": "It is 09:30."},
        {"role": "user", "content": "Thanks!"}],
    "tools+two-results": [
        {"role": "user", "content": "Time and weather?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_time", "arguments": {}}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_b", "content": "sunny"}],
}

TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # transformers' own tojson: no key sorting, no HTML escaping (not Jinja2's default)
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = tojson
    cases = []
    for name, source in TEMPLATES.items():
        template = env.from_string(source)
        conversations = dict(CONVERSATIONS, **(TOOL_CONVERSATIONS if name in TOOL_TEMPLATES else {}))
        for conv_name, messages in conversations.items():
            tools = TOOLS if conv_name in TOOL_CONVERSATIONS else None
            for add in (True, False):
                case = {"template": name, "conversation": conv_name, "add_generation_prompt": add}
                if tools:
                    case["tools"] = True
                try:
                    case["expected"] = template.render(messages=messages, tools=tools, add_generation_prompt=add,
                                                       **TOKENS)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    print(json.dumps({"templates": TEMPLATES, "conversations": dict(CONVERSATIONS, **TOOL_CONVERSATIONS),
                      "tools": TOOLS, "tokens": TOKENS, "cases": cases},
                     indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
