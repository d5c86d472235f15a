// "Copy link" buttons: <button data-copy="#input-id"> copies that input's value.
for (const button of document.querySelectorAll("[data-copy]")) {
  const label = button.textContent;
  button.addEventListener("click", async () => {
    const input = document.querySelector(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch (error) {
      document.execCommand("copy");
    }
    button.textContent = "Copied!";
    setTimeout(() => (button.textContent = label), 1500);
  });
}
