'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { slugify } = require('../src/slugify.js');

test('lower-cases and joins words', () => {
  assert.strictEqual(slugify('Hello World'), 'hello-world');
});

test('drops accents', () => {
  assert.strictEqual(slugify('Crème brûlée'), 'creme-brulee');
});

test('collapses runs of separators', () => {
  assert.strictEqual(slugify('  Fix:  the -- build!  '), 'fix-the-build');
});
