import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LogRenderer, applyBackspaces, formatBytes, renderLine, renderLog, stripAnsi } from "../logRender";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("renderLine", () => {
  test("keeps text after the last carriage return", () => {
    assert.equal(renderLine("10%\r20%\r30%"), "30%");
  });

  test("ignores a trailing carriage return", () => {
    assert.equal(renderLine("10%\r20%\r"), "20%");
    assert.equal(renderLine("windows line\r"), "windows line");
  });

  test("strips colour and cursor escapes", () => {
    assert.equal(renderLine("\x1b[31merror\x1b[0m done"), "error done");
    assert.equal(renderLine("\x1b[2K\rEpoch 3\x1b[A"), "Epoch 3");
  });

  test("strips OSC hyperlinks and titles", () => {
    assert.equal(renderLine("\x1b]8;;http://x\x07link\x1b]8;;\x07"), "link");
    assert.equal(renderLine("\x1b]0;title\x1b\\text"), "text");
  });

  test("applies backspaces and drops other controls", () => {
    assert.equal(applyBackspaces("abc\b\bd"), "ad");
    assert.equal(renderLine("a\x00b\x07c\td"), "abc\td");
  });
});

describe("stripAnsi", () => {
  test("leaves plain text alone", () => {
    assert.equal(stripAnsi("plain [bgrun] state: ok"), "plain [bgrun] state: ok");
  });
});

describe("renderLog", () => {
  test("renders tqdm output as its last frame", () => {
    const raw = "start\n  0%|          | 0/8\r 50%|#####     | 4/8\r100%|##########| 8/8\r\ndone\n";
    assert.equal(renderLog(bytes(raw)), "start\n100%|##########| 8/8\ndone\n");
  });

  test("shows invalid UTF-8 as replacement characters", () => {
    const raw = new Uint8Array([0x61, 0xff, 0xfe, 0x62, 0x0a]);
    assert.equal(renderLog(raw), "a\ufffd\ufffdb\n");
  });

  test("keeps a multi-byte character split across appends", () => {
    const renderer = new LogRenderer(1024);
    const encoded = bytes("é\n");
    renderer.append(encoded.subarray(0, 1));
    renderer.append(encoded.subarray(1));
    assert.equal(renderer.text(), "é\n");
  });

  test("bounded view starts with an omission notice", () => {
    const raw = bytes("line one\nline two\nline three\n");
    const text = renderLog(raw, 12);
    const [notice, ...rest] = text.split("\n");
    assert.match(notice, /^\[bgrun view\] The first 18 bytes of this log are not shown/);
    assert.match(notice, /bgrun\.maxRenderedLogSize/);
    assert.deepEqual(rest, ["line three", ""]);
  });
});

describe("LogRenderer", () => {
  test("appends across chunk boundaries", () => {
    const renderer = new LogRenderer(1 << 20);
    renderer.append(bytes("epoch 1\nepo"));
    assert.equal(renderer.text(), "epoch 1\nepo");
    renderer.append(bytes("ch 2\n"));
    assert.equal(renderer.text(), "epoch 1\nepoch 2\n");
  });

  test("shows the latest frame of an unfinished progress line", () => {
    const renderer = new LogRenderer(1 << 20);
    renderer.append(bytes("head\n 10%\r"));
    assert.equal(renderer.text(), "head\n 10%");
    renderer.append(bytes(" 20%\r 30%"));
    assert.equal(renderer.text(), "head\n 30%");
  });

  test("drops old lines past the limit", () => {
    const renderer = new LogRenderer(10);
    renderer.append(bytes("aaaa\nbbbb\n"));
    renderer.append(bytes("cccc\n"));
    assert.equal(renderer.omittedBytes, 5);
    assert.ok(renderer.text().endsWith("bbbb\ncccc\n"));
  });

  test("reset at an offset skips the partial first line", () => {
    const renderer = new LogRenderer(100);
    renderer.reset(3);
    renderer.append(bytes("rt of line\nwhole line\n"));
    assert.equal(renderer.omittedBytes, 14);
    assert.ok(renderer.text().endsWith("\nwhole line\n"));
  });

  test("cuts an endless line to the limit", () => {
    const renderer = new LogRenderer(8);
    renderer.append(bytes("x".repeat(20)));
    assert.equal(renderer.omittedBytes, 12);
    assert.ok(renderer.text().endsWith("\n" + "x".repeat(8)));
  });

  test("many appends stay fast", () => {
    const renderer = new LogRenderer(1 << 20);
    const started = Date.now();
    for (let index = 0; index < 20000; index += 1) {
      renderer.append(bytes(`step ${index} loss 0.${index}\n`));
    }
    assert.ok(renderer.text().startsWith("[bgrun view]") || renderer.text().startsWith("step 0"));
    assert.ok(Date.now() - started < 5000);
  });
});

describe("formatBytes", () => {
  test("picks a unit", () => {
    assert.equal(formatBytes(1), "1 byte");
    assert.equal(formatBytes(512), "512 bytes");
    assert.equal(formatBytes(2048), "2.0 KiB");
    assert.equal(formatBytes(5 * 1024 * 1024), "5.0 MiB");
  });
});
