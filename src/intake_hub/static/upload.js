// Upload progress for forms with files (progressive enhancement: without this script the
// forms post as usual). A photo over a slow mobile network can take a minute; a bar says
// it is moving, and files over the limits are named before any byte is sent. The server
// still checks everything: its answer page replaces this one, errors and typed text included.
"use strict";

(function () {
  function fill(template, n) {
    return template.replace("{n}", String(n));
  }

  // The same limits as the server, from the page, so a slow upload is not spent in vain.
  function tooLarge(box, files) {
    var maxFiles = Number(box.dataset.maxFiles);
    var maxFile = Number(box.dataset.maxFileBytes);
    var maxMessage = Number(box.dataset.maxMessageBytes);
    var errors = [];
    var total = 0;
    for (var i = 0; i < files.length; i++) {
      total += files[i].size;
      if (i >= maxFiles) {
        errors.push(fill(box.dataset.tooMany, i + 1));
      } else if (files[i].size > maxFile) {
        errors.push(fill(box.dataset.tooLarge, i + 1));
      }
    }
    if (!errors.length && total > maxMessage) {
      errors.push(box.dataset.totalTooLarge);
    }
    return errors;
  }

  function showErrors(el, messages) {
    el.textContent = "";
    var list = document.createElement("ul");
    messages.forEach(function (text) {
      var item = document.createElement("li");
      item.dataset.field = "attachments";
      item.textContent = text;
      list.appendChild(item);
    });
    el.appendChild(list);
    el.hidden = false;
    el.scrollIntoView({ block: "center" });
  }

  // The server's answer page in place of this one: no second request, and a POST that
  // must not be repeated is not repeated.
  function replacePage(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.title = doc.title;
    document.documentElement.lang = doc.documentElement.lang;
    document.body.replaceWith(document.adoptNode(doc.body));
    window.scrollTo(0, 0);
    wire();
  }

  function send(form, box, button) {
    var progress = box.querySelector("#upload-progress");
    var bar = progress.querySelector("progress");
    var percent = progress.querySelector("output");
    var error = box.querySelector("#upload-error");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) {
        var done = Math.floor((event.loaded / event.total) * 100);
        bar.value = done;
        percent.textContent = done + "%";
      } else {
        bar.removeAttribute("value");
      }
    };
    xhr.onload = function () {
      var type = xhr.getResponseHeader("Content-Type") || "";
      var here = new URL(form.action, location.href).href;
      if (xhr.status === 200 && xhr.responseURL && xhr.responseURL !== here) {
        // Redirected to the status page: go there, so the address bar is the ticket's.
        location.assign(xhr.responseURL);
      } else if (type.indexOf("text/html") === 0) {
        replacePage(xhr.responseText);
      } else {
        failed();
      }
    };
    function failed() {
      progress.hidden = true;
      button.disabled = false;
      showErrors(error, [box.dataset.failed]);
    }
    xhr.onerror = failed;
    xhr.ontimeout = failed;
    xhr.onabort = failed;
    error.hidden = true;
    bar.value = 0;
    percent.textContent = "0%";
    progress.hidden = false;
    button.disabled = true;
    xhr.send(new FormData(form));
  }

  function wire() {
    var boxes = document.querySelectorAll("form [data-upload]");
    Array.prototype.forEach.call(boxes, function (box) {
      var form = box.closest("form");
      var input = box.querySelector("input[type=file]");
      var button = form.querySelector("button[type=submit]");
      var error = box.querySelector("#upload-error");
      input.addEventListener("change", function () {
        var errors = tooLarge(box, input.files);
        if (errors.length) {
          showErrors(error, errors);
        } else {
          error.hidden = true;
        }
      });
      form.addEventListener("submit", function (event) {
        if (!input.files.length) {
          return; // text only: the ordinary post is quick
        }
        event.preventDefault();
        var errors = tooLarge(box, input.files);
        if (errors.length) {
          showErrors(error, errors);
          return;
        }
        send(form, box, button);
      });
    });
  }

  // Back from the status page, a page kept in memory must not show a stuck upload.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("#upload-progress").forEach(function (el) {
      el.hidden = true;
    });
    document.querySelectorAll("form button[type=submit]").forEach(function (el) {
      el.disabled = false;
    });
  });

  wire();
})();
