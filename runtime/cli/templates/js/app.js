// The {{name}} module in JavaScript: exports local:{{name}}/greet (wit/world.wit).

export const greet = {
  hello(name) {
    return `Hello, ${name}!`;
  },
};
